"""Our own system checks: the mail backend (`check --deploy`; Django's cover the HTTPS settings), the secret
key."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.backends.dummy import EmailBackend as DummyBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.utils.module_loading import import_string

SMTP_HINT = "Set EMAIL_URL to your SMTP server, e.g. smtp+tls://user:password@smtp.example.com:587."


@register(Tags.security, deploy=True)
def email_backend_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Mail that is written out instead of sent puts password-reset links where others read them."""
    if settings.DEBUG:
        return []
    try:
        backend = import_string(settings.EMAIL_BACKEND)
    except ImportError:
        return [Error(f"EMAIL_BACKEND {settings.EMAIL_BACKEND!r} cannot be imported.", id="mttcrm.E002")]
    if isinstance(backend, type) and issubclass(backend, ConsoleBackend):
        # The console backend prints every mail into the log; the file backend (its subclass) keeps them
        # on the server's disk. Either way a password-reset link reaches whoever reads logs or files.
        return [
            Error(
                "E-mail is written to the console or to files instead of being sent: password-reset "
                "links would reach whoever reads the logs and could take over any account.",
                hint=SMTP_HINT,
                id="mttcrm.E001",
            )
        ]
    if isinstance(backend, type) and issubclass(backend, LocmemBackend | DummyBackend):
        return [
            Warning(
                "E-mail is never delivered (EMAIL_BACKEND keeps it in memory or drops it): password "
                "resets and health warnings reach nobody.",
                hint=SMTP_HINT,
                id="mttcrm.W001",
            )
        ]
    return []


@register(Tags.security)
def secret_key_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """The development key is in the repository: with it anyone can sign sessions and password-reset links.
    Not only under --deploy: migrate runs this too, so compose's stack does not start with it."""
    if settings.DEBUG or settings.SECRET_KEY != settings.DEVELOPMENT_SECRET_KEY:
        return []
    return [
        Error(
            "SECRET_KEY is the development key from the repository while DEBUG is false.",
            hint="Set SECRET_KEY to a long random string: "
            'python -c "import secrets; print(secrets.token_urlsafe(50))"',
            id="mttcrm.E003",
        )
    ]
