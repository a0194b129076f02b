# One image for every role of the production stack (web, ws, applier, worker, beat, sandbox); compose picks
# the command. Every volume mount point exists in the image, owned by `app`: Docker copies its owner into a new
# named volume, which is otherwise created root-owned and unwritable for the app.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/app/var

WORKDIR /app
COPY pyproject.toml README.md ./
COPY mttcrm ./mttcrm
COPY integrations ./integrations
COPY calls ./calls
COPY contacts ./contacts
COPY sandbox ./sandbox
COPY monitoring ./monitoring
RUN pip install --no-cache-dir .
COPY . .
RUN useradd --create-home --uid 10001 app \
    && mkdir -p /app/var/metrics /app/var/spool /app/var/media \
    && DEBUG=false SECRET_KEY=collectstatic FIELD_ENCRYPTION_KEYS=Y29sbGVjdHN0YXRpYy1vbmx5LW5vdC1hLXNlY3JldCE= \
       python manage.py collectstatic --noinput \
    && chown -R app /app/var
USER app
EXPOSE 8000
# The web role (pages and the notify URL); compose gives the other roles their own command.
CMD ["gunicorn", "--config", "python:mttcrm.gunicorn", "mttcrm.wsgi:application"]
