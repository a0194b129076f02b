"""Phone number normalisation: every format the PBX sends maps to one E.164 string.

API.md: "Numbers arrive as the network gave them: `+79219462761`, `79219462761`, `89219462761`,
`0079581234567`, `78124241500@pstn` (accountId). The PBX never normalises them (§6.4)." We store E.164
(`+79219462761`) and look clients up by it; anything we cannot read as a phone number is kept as typed
and matched on its digits (see ``PhoneNumber.raw_digits``).

Workplace and terminal SIP IDs (`883140582526566`) are MTT numbers in the ITU "International Networks"
range +883 140: phonenumbers calls them valid, but they are the company's own seats, never a client.
``normalize`` returns None for them and ``is_pbx_sip_id`` names them, so that an employee's SIP ID is never
auto-created as a client contact. The rule is 12+ digits starting with 883 (after an optional ``+``/``00``):
an 11-digit ``8831…`` is a Russian trunk-prefixed Nizhny Novgorod number (8 831 …) and stays a phone number.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from django.conf import settings
from django.utils.translation import gettext as _

# Quotes of every kind: ASCII, «», and U+2018…U+201F (‘’‚‛“”„‟).
_QUOTES = "'\"«»\u2018-\u201f"
_QUOTED = re.compile(rf"[{_QUOTES}](.*)[{_QUOTES}]", re.DOTALL)
# Invisible marks count as separators too: a number copied from a messenger or a web page comes wrapped in
# bidi marks (U+202A…U+202E, U+2066…U+2069) or with zero-width spaces or a BOM between its digits. So do
# quotes: a number pasted from a CSV or JSON ("+7 921 946-27-61"), quoted in a letter («…», „…“), or kept
# as text in a spreadsheet cell ('89219462761) was refused as "check the country code and the digits".
_SEPARATORS = re.compile(
    r"[\s\-().\u00a0\u2010-\u2015/\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    rf"{_QUOTES}]"
)
# What a refusal repeats of what was typed: enough to recognise it, never a page of it.
SHOWN_CHARS = 40
_NUMBERISH = re.compile(r"\+?\d+")
_URI_SCHEME = re.compile(r"^(?:sips?|tel):", re.IGNORECASE)
# A SIP From/To header's value: an optional display name, then the URI in angle brackets (RFC 3261 §20.10).
_NAME_ADDR = re.compile(r'(?:"[^"]*"|[^"<>]*)\s*<([^<>]*)>')
# ITU-T E.164 +883 "International Networks"; MTT's workplaces and terminals live in +883 140.
_SIP_ID_PREFIX = "883"
_SIP_ID_MIN_DIGITS = 12
# An extension typed after the number, the ways Russian offices write it: "доб. 12", "доб.12",
# "добавочный 12", "вн. 12", "ext. 12", "ext12", "x12", "#12", ",12" (a phone's pause), ";ext=12" (tel: URIs);
# a comma may come before the word or the "#" too ("…77, доб 5"); a written-out one may stand in brackets, as
# business cards and signatures put it ("+7 (495) 123-45-67 (доб. 123)").
EXTENSION_WORD = r"(?:доб(?:авочный)?|вн(?:утр(?:енний)?)?|ext(?:ension)?|x)"
_EXTENSION = re.compile(
    rf"\s*(?:,?\s*(?:#|(?<![^\W\d_]){EXTENSION_WORD}\.?)|,|;\s*ext=)\s*(?P<ext>\d{{1,8}})\s*$"
    rf"|\s*\(\s*(?:#|{EXTENSION_WORD}\.?)\s*(?P<bracketed>\d{{1,8}})\s*\)\s*$",
    re.IGNORECASE,
)
_LETTERS = re.compile(r"[^\W\d_]")
# First digits of a national number that no +7 code has (see _unassigned_in_zone_7).
_ZONE_7_UNASSIGNED = "012"


def default_region() -> str:
    return str(getattr(settings, "PHONE_DEFAULT_REGION", "RU") or "RU").upper()


def ascii_digits(raw: str) -> str:
    """What was received or typed with every digit in ASCII: NFKC first (full-width `＋７９２１…` → `+7921…`,
    as some phones and input methods send them), then any other decimal digit (Arabic-Indic `٧٩٢١…`, which
    NFKC keeps) by its value. Every function here reads numbers through this, so a number means the same
    whatever digits it was written in."""
    value = unicodedata.normalize("NFKC", raw or "")
    if value.isascii():
        return value
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in value)


def _unquoted(value: str) -> str:
    """`"sip:7921…@pstn"`, `«8 921 … доб. 5»` → what is inside the quotes (any kind, as a pair)."""
    quoted = _QUOTED.fullmatch(value)
    return quoted.group(1).strip() if quoted is not None else value


def _strip_uri(raw: str) -> str:
    """`sip:78124241500@pstn;user=phone` → `78124241500`; `tel:+7-921-…;ext=1` → `+7-921-…`; a SIP header's
    name-addr `"Иван" <sip:79219462761@host>` → `79219462761`."""
    value = ascii_digits(raw).strip()
    name_addr = _NAME_ADDR.fullmatch(value)
    value = name_addr.group(1).strip() if name_addr is not None else _unquoted(value)
    value = _URI_SCHEME.sub("", value)
    value = value.split("@", 1)[0]
    value = value.split(";", 1)[0]
    return value.strip()


def clean(raw: str) -> str:
    """The number without URI decoration and separators: `+7 (921) 946-27-61` → `+79219462761`."""
    return _SEPARATORS.sub("", _strip_uri(raw or ""))


def digits_only(raw: str) -> str:
    """Every digit of what was received, for matching numbers that are not phone numbers."""
    return "".join(ch for ch in _strip_uri(raw or "") if ch.isdigit())


def split_extension(raw: str) -> tuple[str, str]:
    """(number, extension) of what a person typed: `8 (800) 555-35-35 доб. 12` → (`8 (800) 555-35-35`,
    `12`); (raw, "") when no extension is written after the number."""
    value = _unquoted(ascii_digits(raw).strip())
    match = _EXTENSION.search(value)
    if match is None or not any(ch.isdigit() for ch in value[: match.start()]):
        return value, ""
    return value[: match.start()].strip(), match.group("ext") or match.group("bracketed")


def shown(raw: str) -> str:
    """What a refusal repeats of a typed number: without invisible or control characters (a bidi override
    would turn the message around), at most SHOWN_CHARS characters."""
    visible = "".join(ch for ch in raw if unicodedata.category(ch) not in ("Cc", "Cf")).strip()
    return visible if len(visible) <= SHOWN_CHARS else visible[: SHOWN_CHARS - 1] + "…"


def dial_problem(raw: str) -> str | None:
    """Why a number a person typed (its extension split off) cannot be dialled, in words; None when it
    can. The contact form refuses these before saving (the PBX's own numbers are stored as they come)."""
    number = (raw or "").strip()
    if not number:
        return _("Enter a phone number.")
    if normalize(number):
        return None
    if _LETTERS.search(_URI_SCHEME.sub("", number).split("@", 1)[0]):
        return _(
            "“%(number)s” cannot be dialled: a phone number has digits only (an extension goes after "
            "it, e.g. “доб. 12”)."
        ) % {"number": shown(number)}
    if is_pbx_sip_id(number):
        return _("“%(number)s” is a PBX workplace SIP ID, not a client's number.") % {"number": shown(number)}
    cleaned = clean(number)
    digits = "".join(ch for ch in cleaned if ch.isdigit())
    international = _international_digits(cleaned)
    try:
        if international is not None:
            parsed = phonenumbers.parse("+" + international, None)
        elif len(digits) == 11 and digits[0] in "78":
            parsed = phonenumbers.parse("+7" + digits[1:], None)
        else:
            parsed = phonenumbers.parse(digits, default_region())
        reason = phonenumbers.is_possible_number_with_reason(parsed)
        if reason == phonenumbers.ValidationResult.INVALID_LENGTH:
            # Between the lengths a country has (Russia: always 10 after +7): say which way it is off.
            national = len(str(parsed.national_number))
            if national > 10:
                reason = phonenumbers.ValidationResult.TOO_LONG
            elif national < 10:
                reason = phonenumbers.ValidationResult.TOO_SHORT
        if reason == phonenumbers.ValidationResult.IS_POSSIBLE and _unassigned_in_zone_7(parsed):
            return _(
                "“%(number)s” cannot be dialled: there is no Russian code %(code)s. Write a foreign number "
                "with its country code, e.g. +375 29 123-45-67."
            ) % {"number": shown(number), "code": phonenumbers.national_significant_number(parsed)[:3]}
    except phonenumbers.NumberParseException:
        reason = phonenumbers.ValidationResult.INVALID_LENGTH
    if reason in (
        phonenumbers.ValidationResult.TOO_SHORT,
        phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ):
        return _(
            "“%(number)s” cannot be dialled: too few digits (%(count)d). Write the whole number with "
            "its code, e.g. +7 495 123-45-67 or 8 800 555-35-35."
        ) % {"number": shown(number), "count": len(digits)}
    if reason == phonenumbers.ValidationResult.TOO_LONG:
        return _(
            "“%(number)s” cannot be dialled: too many digits (%(count)d). Put an extension after the "
            "number as “доб. 12”."
        ) % {"number": shown(number), "count": len(digits)}
    return _("“%(number)s” cannot be dialled: check the country code and the digits.") % {
        "number": shown(number)
    }


def _international_digits(cleaned: str) -> str | None:
    """Digits after an explicit international prefix (`+` or `00`), else None."""
    if cleaned.startswith("+"):
        return cleaned[1:]
    if cleaned.startswith("00"):
        return cleaned[2:]
    return None


def is_pbx_sip_id(raw: str) -> bool:
    """True for an MTT workplace/terminal SIP ID such as `883140582526566` (never a client number)."""
    cleaned = clean(raw)
    if not _NUMBERISH.fullmatch(cleaned):
        return False
    digits = _international_digits(cleaned)
    if digits is None:
        digits = cleaned
    return digits.startswith(_SIP_ID_PREFIX) and len(digits) >= _SIP_ID_MIN_DIGITS


# What a network writes in place of a caller id the caller hid (RFC 3323's "anonymous@anonymous.invalid",
# the usual From of a withheld number; "restricted", "private", "unavailable" from other carriers) or could
# not get. Not a number: nothing to show as one, look up, call back or make a contact of.
HIDDEN_CALLER_IDS = frozenset(
    {"anonymous", "restricted", "private", "unavailable", "unknown", "withheld", "hidden", "blocked",
     "скрыт", "скрытый", "номер скрыт", "неизвестен", "неизвестный", "не определен", "не определён"}
)  # fmt: skip


def is_hidden(raw: str) -> bool:
    """True for a caller id that says the number is hidden or unknown (``HIDDEN_CALLER_IDS``), in any case and
    in any URI form: ``Anonymous``, ``sip:anonymous@anonymous.invalid``, ``restricted@pstn``."""
    value = _strip_uri(raw or "").strip().strip('"').strip()
    return value.casefold() in HIDDEN_CALLER_IDS


def sip_id_key(raw: str) -> str:
    """One key for a workplace or terminal SIP ID in any form a notification names it: the directory lists
    ``883140777828305``; a party may carry ``sip:883140777828305@10.0.0.1``, ``883140777828305@domain``
    (like the guide's ``78124241500@pstn``), ``+883140777828305`` or ``00883140777828305`` (guide §6.4: the
    PBX passes identifiers as it received them). Its digits without the international prefix; "" for what is
    not all digits (then only the exact text names a workplace)."""
    cleaned = clean(raw or "")
    if not _NUMBERISH.fullmatch(cleaned):
        return ""
    digits = _international_digits(cleaned)
    return digits if digits is not None else cleaned


def _unassigned_in_zone_7(parsed: phonenumbers.PhoneNumber) -> bool:
    """True for a +7 number whose code starts with 0, 1 or 2: no such code exists in Russia or Kazakhstan
    (their codes start with 3-9). It is what a foreign number typed the local way reads as: Belarus's
    `8 029 123-45-67` (+375 29 123-45-67) and Ukraine's old `8 044 123-45-67` are 11 digits starting with
    the trunk "8", and taken for +7 029…, +7 044… they were stored, shown as `+7 0291234567`, never matched
    the client's call from +375… and made MTT dial a number that does not exist."""
    national = phonenumbers.national_significant_number(parsed)
    return parsed.country_code == 7 and national[:1] in _ZONE_7_UNASSIGNED


def _e164_if_possible(candidate: str, region: str | None, *, require_valid: bool = False) -> str | None:
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    # IS_POSSIBLE only: IS_POSSIBLE_LOCAL_ONLY would turn a 7-digit city number into "+74241500".
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE or _unassigned_in_zone_7(parsed):
        return None
    if require_valid and not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize(raw: str) -> str | None:
    """E.164 (`+79219462761`) for any format the PBX or a person uses, or None when it is not one.

    The one reading of a number, for calls, the contact form and searches alike: digits in any script
    (``ascii_digits``), an extension written after the number split off (``split_extension``: `… доб. 12`
    is the number `…`). None for: empty input, letters, short internal numbers (`101`), local numbers
    without an area code, a number that is not of a length E.164 allows (libphonenumber's "possible"),
    a negative number (`-1`: what a broken caller id sends, not a dialling format), and PBX SIP IDs (see
    the module docstring).
    """
    number = split_extension(raw)[0]
    if number.startswith("-"):
        return None
    cleaned = clean(number)
    if not cleaned or not _NUMBERISH.fullmatch(cleaned) or is_pbx_sip_id(cleaned):
        return None
    international = _international_digits(cleaned)
    if international is not None:
        return _e164_if_possible("+" + international, None)
    digits = cleaned
    # Russian habits: 7XXXXXXXXXX (the PBX) and 8XXXXXXXXXX (trunk prefix) are both +7 XXX XXX-XX-XX.
    if len(digits) == 11 and digits[0] in "78":
        return _e164_if_possible("+7" + digits[1:], None)
    region = default_region()
    found = _e164_if_possible(digits, region)
    if found is None and len(digits) >= 11:
        # A foreign number without its "+" (`4915112345678`): accept only a number valid as such.
        found = _e164_if_possible("+" + digits, None, require_valid=True)
    return found


def line_key(raw: str) -> str:
    """One key for a company number (our line, an ``ExternalNumber``) in any form MTT sends it.

    Guide §6.4: the PBX passes numbers in the form it received them, ours included, so the line
    ``74996497803`` may arrive as ``+74996497803``, ``84996497803``, ``0074996497803``,
    ``74996497803@pstn`` or ``sip:74996497803@host``: all give ``+74996497803`` (``normalize``). A
    number that is not a phone number to libphonenumber (a short service number, the guide's
    ``880023213``) keys by its digits, the same way on both sides. "" when nothing is left (no digits).
    """
    cleaned = clean(raw)
    if not cleaned:
        return ""
    return normalize(cleaned) or digits_only(cleaned)


def format_for_people(e164: str) -> str:
    """`+79219462761` → `+7 921 946-27-61`; anything unreadable comes back unchanged."""
    if not e164:
        return ""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def for_people(value: str) -> str:
    """Any number as received or stored, for an operator to read: a phone number formatted
    (``format_for_people``: `sip:+79219462761@host;user=phone` → `+7 921 946-27-61`); anything else without
    its URI decoration (`sip:101@10.133.33.136:5073;user=phone` → `101`, an internal extension, not a
    line of SIP syntax), or as received when nothing is left of it."""
    if not value:
        return ""
    e164 = normalize(value)
    if e164:
        return format_for_people(e164)
    return _strip_uri(value) or value


def dial_format(e164: str) -> str:
    """What the PBX dials (makeCall `calleid`): `79219462761` for Russia, E.164 digits without `+` else.

    For +7 this is the 11 digits starting with 7 the PBX itself sends; other countries' E.164 digits
    are already what it expects.
    """
    value = normalize(e164) or e164
    return value[1:] if value.startswith("+") else value
