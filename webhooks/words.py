"""Why a webhook delivery failed, and why a subscription was disabled, in the admin's language.

The reasons are stored in English (``WebhookDelivery.error``, ``WebhookAttempt.error``,
``WebhookSubscription.disabled_reason``), as they are logged (webhooks/services.py); the admin shows them
translated, as the ignored notifications' reasons (integrations/reasons.py). A receiver's answer that is
not a 2xx leaves no error, only its status: it is said in words too. A text no pattern matches (an
exception seldom seen) is shown after words that say a connection failed, as Python wrote it.
"""

from __future__ import annotations

import re

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from .safety import ADDRESS_WORDS, URL_WORDS

# The address check's refusals (calls/recordings/download.py url_parts, resolve_addresses; safety.py).
_REFUSALS: list[tuple[re.Pattern[str], Promise]] = [
    (re.compile(pattern), words)
    for pattern, words in [
        (r"(?s)not a valid URL: .*", URL_WORDS["invalid"]),
        (r"scheme .* is not allowed", URL_WORDS["scheme"]),
        (r"plain http is not allowed \(https only\)", URL_WORDS["http"]),
        (r"credentials in the URL are not allowed", URL_WORDS["credentials"]),
        (r"the URL has no host", URL_WORDS["no_host"]),
        (r"(?s)cannot resolve (?P<host>\S+): .*", _lazy("the host %(host)s cannot be found (DNS)")),
        (r"(?P<host>\S+) resolves to no address", _lazy("the host %(host)s cannot be found (DNS)")),
    ]
]
_UNSAFE = re.compile(r"host (?P<host>\S+) resolves to a (?P<kind>.+) address \((?P<address>[^)]*)\)")

# requests' exceptions (``type(exc).__name__: …``), the kinds a receiver's fault gives.
_EXCEPTIONS: dict[str, Promise] = {
    "ConnectTimeout": _lazy("the receiver did not accept the connection in time (timeout)"),
    "ReadTimeout": _lazy("the receiver did not answer in time (timeout)"),
    "Timeout": _lazy("the receiver did not answer in time (timeout)"),
    "SSLError": _lazy("the receiver's TLS certificate was not accepted, or TLS failed"),
    "ConnectionError": _lazy("could not connect to the receiver (refused, reset or unreachable)"),
    "ChunkedEncodingError": _lazy("the receiver broke off its answer"),
    "ContentDecodingError": _lazy("the receiver's answer could not be read"),
    "InvalidURL": URL_WORDS["invalid"],
    "InvalidHeader": URL_WORDS["invalid"],
}
_EXCEPTION = re.compile(r"(?s)(?P<name>[A-Za-z]+): .*")
_DISABLED = re.compile(r"(?s)deliveries failed for (?P<hours>\d+) h; last: (?P<last>.*)")


def _refusal_words(why: str) -> str:
    unsafe = _UNSAFE.fullmatch(why)
    if unsafe is not None:
        kind = ADDRESS_WORDS.get(unsafe["kind"], unsafe["kind"])
        return _("%(host)s leads to %(kind)s (%(address)s)") % {
            "host": unsafe["host"],
            "kind": kind,
            "address": unsafe["address"],
        }
    for pattern, words in _REFUSALS:
        match = pattern.fullmatch(why)
        if match is not None:
            return str(words) % match.groupdict() if match.groupdict() else str(words)
    return why


def status_words(status: int) -> str:
    """A receiver's answer that did not deliver the event."""
    if 300 <= status < 400:
        return _("the receiver answered with a redirect (HTTP %(status)d): redirects are not followed") % {
            "status": status
        }
    return _("the receiver answered HTTP %(status)d") % {"status": status}


def error_in_words(error: str, status: int | None = None) -> str:
    """An attempt's (or a delivery's last) failure in the active language; "" when it did not fail."""
    if error.startswith("refused: "):
        return _("the URL may not be used: %(reason)s") % {
            "reason": _refusal_words(error[len("refused: ") :])
        }
    if error:
        match = _EXCEPTION.fullmatch(error)
        words = _EXCEPTIONS.get(match["name"]) if match is not None else None
        if words is not None:
            return str(words)
        return _("the connection failed: %(error)s") % {"error": error}
    if status is not None and not 200 <= status < 300:
        return status_words(status)
    return ""


def disabled_reason_in_words(reason: str) -> str:
    """Why a subscription was disabled (webhook_subscription_disable's reason) in the active language."""
    match = _DISABLED.fullmatch(reason)
    if match is None:
        return reason
    last = match["last"]
    last_words = status_words(int(last)) if last.isdigit() else error_in_words(last)
    return _("deliveries failed for %(hours)s h; the last: %(last)s") % {
        "hours": match["hours"],
        "last": last_words,
    }
