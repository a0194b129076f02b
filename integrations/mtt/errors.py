"""Typed errors of the MTT Open API. Each carries MTT's answer and a sentence for the person who clicked."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _


class MttError(Exception):
    """Any failure talking to MTT. ``permanent`` tells callers whether repeating can help."""

    permanent = False

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        status_code: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.status_code = status_code
        self.body = body

    @property
    def user_message(self) -> str:
        """What to tell the operator, in words."""
        return _("MTT did not answer as expected: %(error)s") % {"error": self.message}

    def __str__(self) -> str:
        parts = [self.message]
        if self.method:
            parts.append(f"method={self.method}")
        if self.status_code is not None:
            parts.append(f"status={self.status_code}")
        return " ".join(parts)


class MttTransientError(MttError):
    """Timeouts, connection failures, 5xx, 429: worth retrying later."""

    permanent = False

    @property
    def user_message(self) -> str:
        return _("MTT is unreachable or overloaded right now; please try again in a minute.")


class MttRateLimited(MttTransientError):
    """MTT answered 429, or our own limiter could not give a permit in time."""

    def __init__(self, message: str, *, retry_after: float = 1.0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    @property
    def user_message(self) -> str:
        return _("Too many requests to MTT right now (5 per second allowed); please try again.")


class MttPermanentError(MttError):
    """MTT refused the request (4xx): repeating it unchanged will not help."""

    permanent = True

    @property
    def user_message(self) -> str:
        detail = mtt_error_text(self.body) or self.message
        return _("MTT refused the request: %(error)s") % {"error": detail}


class MttAuthError(MttPermanentError):
    """401 even with a freshly refreshed token."""

    @property
    def user_message(self) -> str:
        return _("MTT does not accept our access token; an administrator must reconnect the integration.")


class MttReconnectRequired(MttAuthError):
    """No usable tokens: the refresh was refused or the integration was never connected."""

    @property
    def user_message(self) -> str:
        return _(
            "The MTT integration is not connected or needs to be reconnected by an administrator "
            "(Admin → Integrations → Connect)."
        )


class MttBadResponse(MttPermanentError):
    """MTT answered 2xx with a body we cannot read."""


def mtt_error_text(body: Any) -> str:
    """Best-effort extraction of MTT's own error message from an error body."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err.get("description") or err.get("code") or "")
        if isinstance(err, str):
            return str(body.get("error_description") or err)
        if "message" in body:
            return str(body["message"])
    if isinstance(body, str):
        return body[:200]
    return ""
