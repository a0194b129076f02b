"""Why a notification was kept as ignored, in the admin's language.

The reason is stored in English (``NotificationEvent.error``), as it is logged and answered to MTT
(integrations/mtt/notifications.py, integrations/applier.py); the admin shows it translated. Each pattern
below matches one reason those modules write, the values in it (an event's name, a state) carried over as
sent; the error of a row whose apply raised is said in words, the exception after them as Python wrote it.
A text no pattern matches (an error stored by an older version) is shown as it is.
"""

from __future__ import annotations

import re

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

_REASONS: list[tuple[re.Pattern[str], Promise]] = [
    (re.compile(pattern), words)
    for pattern, words in [
        (r"body is not UTF-8", _("the body is not UTF-8 text (kept as received)")),
        (r"body is empty", _("the body is empty")),
        (r"body is not JSON", _("the body is not JSON (kept as received)")),
        (r"body is nested deeper than (?P<n>\d+) levels", _("the body is nested deeper than %(n)s levels")),
        (r"body holds a number too long to read", _("the body holds a number too long to read")),
        (
            r"body holds a number that is not finite \(NaN or Infinity\)",
            _("the body holds a number that is not finite (NaN or Infinity)"),
        ),
        (r"body holds a NUL character", _("the body holds a NUL character")),
        (r"body holds a lone surrogate \(not UTF-8\)", _("the body holds a character that is not UTF-8")),
        (r"body is not a JSON object", _("the body is not a JSON object")),
        (r"'event' is missing or not a string", _("“event” is missing or not text")),
        (r"'event' is too long", _("“event” is too long")),
        (r"'result' is missing or not an object", _("“result” is missing or not an object")),
        (r"'result\.eventType' is missing", _("“result.eventType” is missing")),
        (
            r"eventType (?P<value>.*) is not one the guide describes \(§9\.4, §9\.5\)",
            _("the settings change %(value)s is not one MTT's guide describes"),
        ),
        (
            r"event (?P<value>.*) is not one the guide describes",
            _("the event %(value)s is not one MTT's guide describes"),
        ),
        (
            r"'result\.callInfo' is missing or not an object",
            _("“result.callInfo” is missing or not an object"),
        ),
        (r"'result\.callInfo\.call\.id' is missing", _("the call's id (“call.id”) is missing")),
        (
            r"'result\.callInfo\.call' id or tag longer than 255 characters",
            _("the call's id or tag is longer than 255 characters"),
        ),
        (
            r"'result\.callInfo\.call\.id' has no Call-ID before '~' "
            r"\(nothing says which call it belongs to\)",
            _("the call's id has nothing before “~”: nothing says which call it belongs to"),
        ),
        (r"'result\.callInfo\.state' is missing", _("the call's state is missing")),
        (
            r"call state (?P<value>.*) is not one the guide describes \(§10\.1\)",
            _("the call state %(value)s is not one MTT's guide describes"),
        ),
        (
            r"nothing in it to apply \(see the applier's log\)",
            _("nothing in it to apply (see the applier's log)"),
        ),
        # A row whose apply raised (integrations/applier.py): the exception, as Python wrote it, follows.
        (r"(?s)applying failed: (?P<error>.*)", _("applying failed: %(error)s")),
    ]
]

# A notification applied as a cleaned copy, whose first reason is the copy's: "<reason> (<problem>, stored
# with U+FFFD in its place)", or "with null" for a NaN or Infinity. Both may hold parentheses ("(§10.1)",
# "(NaN or Infinity)"): where one ends is found by trying each " (" (``_cleaned_in_words``).
_CLEANED = re.compile(r"(?P<both>.* \(.*), stored with (?P<with>U\+FFFD|null) in its place\)")


def reason_in_words(text: str) -> str:
    """``text`` (an ignored notification's reason) in the active language; as it is when not one of ours."""
    words = _known(text)
    if words is not None:
        return words
    cleaned = _CLEANED.fullmatch(text)
    if cleaned is not None:
        words = _cleaned_in_words(cleaned["both"], cleaned["with"])
        if words is not None:
            return words
    return text


def _cleaned_in_words(both: str, replacement: str) -> str | None:
    for split in re.finditer(r" \(", both):
        reason, problem = _known(both[: split.start()]), _known(both[split.end() :])
        if reason is not None and problem is not None:
            if replacement == "null":
                words_of = _("%(reason)s (%(problem)s: kept as received, applied with null in its place)")
            else:
                words_of = _("%(reason)s (%(problem)s: kept as received, applied with U+FFFD in its place)")
            return str(words_of) % {"reason": reason, "problem": problem}
    return None


def _known(text: str) -> str | None:
    for pattern, words in _REASONS:
        match = pattern.fullmatch(text)
        if match is not None:
            return str(words) % match.groupdict() if match.groupdict() else str(words)
    return None
