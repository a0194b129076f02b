"""Reads of contacts: lookup by any number format (the hot path of every call) and search."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import F, Lookup, Q, QuerySet

from . import phones
from .models import Contact, PhoneNumber

# A search matching up to this many contacts reads them by their ids (contacts_search).
SEARCH_ID_LIST_LIMIT = 20_000
# A search query made only of these characters (and with enough digits) is treated as a number.
_MIN_DIGITS_FOR_NUMBER_SEARCH = 3
_NUMBERISH = re.compile(r"\+?\d+")


class EqualsAny(Lookup):  # type: ignore[type-arg]
    """``lhs = ANY(%s)`` with a Python list as one array parameter (PostgreSQL)."""

    lookup_name = "equals_any"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", (*lhs_params, *rhs_params)


def _lookup_key(number: str) -> tuple[str, str] | None:
    """("e164", "+7…") for a phone number, ("raw_digits", "…") for anything else with digits, or None."""
    if phones.is_pbx_sip_id(number):
        return None
    e164 = phones.normalize(number)
    if e164:
        return "e164", e164
    digits = phones.digits_only(number)
    return ("raw_digits", digits) if digits else None


def phone_number_lookup(*, number: str) -> QuerySet[PhoneNumber] | None:
    """The stored number row matching `number` in any format (with its contact), or None.

    One probe of a unique index: `e164` when the number normalises, else the digits of a number that
    is not a phone number. None when there is nothing to look for (empty input, a PBX SIP ID).
    """
    key = _lookup_key(number)
    if key is None:
        return None
    qs = PhoneNumber.objects.select_related("contact").order_by()
    if key[0] == "e164":
        # The repeated `e164 <> ''` names the partial unique index's condition: SQLite only uses a
        # partial index when the query spells its condition out (PostgreSQL infers it either way).
        return qs.filter(~Q(e164=""), e164=key[1])
    return qs.filter(e164="", raw_digits=key[1])


# The hot path (every call notification) in plain SQL: the same index probes as phone_number_lookup,
# at a third of the ORM's Python cost (bench/contacts_lookup.py: ~0.3 ms instead of ~0.9 ms per
# lookup). Identifiers come from the models' metadata, values are always bound parameters.
_CONTACT = Contact._meta.db_table
_PHONE = PhoneNumber._meta.db_table
_FIND_SQL = {
    "e164": (
        f'SELECT * FROM "{_CONTACT}" WHERE "id" = (SELECT "contact_id" FROM "{_PHONE}" '  # noqa: S608
        f'WHERE "e164" = %s AND NOT ("e164" = \'\') LIMIT 1)'
    ),
    "raw_digits": (
        f'SELECT * FROM "{_CONTACT}" WHERE "id" = (SELECT "contact_id" FROM "{_PHONE}" '  # noqa: S608
        f'WHERE "e164" = \'\' AND "raw_digits" = %s LIMIT 1)'
    ),
}


def contact_lookup_sql(*, number: str) -> tuple[str, list[str]] | None:
    """The SQL and parameters contact_find_by_number runs for `number` (for EXPLAIN), or None."""
    key = _lookup_key(number)
    if key is None:
        return None
    return _FIND_SQL[key[0]], [key[1]]


def phone_number_owner(*, number: str) -> Contact | None:
    """The contact that owns `number` (tombstones included: callers decide), or None. One query."""
    lookup = contact_lookup_sql(number=number)
    if lookup is None:
        return None
    sql, params = lookup
    return next(iter(Contact.objects.raw(sql, params)), None)


def contact_find_by_number(*, number: str) -> Contact | None:
    """The client behind a number in any format (`+7…`, `8…`, `007…`, `…@pstn`), or None."""
    contact = phone_number_owner(number=number)
    # Merges move numbers to the survivor, so this loop only runs on data merged by hand in SQL.
    seen: set[int] = set()
    while contact is not None and contact.merged_into_id is not None and contact.pk not in seen:
        seen.add(contact.pk)
        contact = contact.merged_into
    return contact


def user_can_merge_contacts(user: Any) -> bool:
    """Staff, or anyone granted `contacts.merge_contact`."""
    return bool(getattr(user, "is_staff", False) or user.has_perm("contacts.merge_contact"))


def looks_like_number(query: str) -> bool:
    """A search query that is (a part of) a number in any format: `946-27-61`, `sip:7921…@pstn`."""
    cleaned = phones.clean(query)
    return bool(_NUMBERISH.fullmatch(cleaned)) and len(cleaned.lstrip("+")) >= _MIN_DIGITS_FOR_NUMBER_SEARCH


@dataclass(frozen=True)
class NumberQuery:
    """What a search box's text means as a phone number (``number_query``)."""

    e164: str  # the whole number typed (`8 921 946-27-61`); "" for a part of one (`8 921 946`, `946-27`)
    digits: str  # the digits typed, an extension after the number left out
    # What a stored E.164 contains when it is the number the part was typed of: the digits, and the
    # same read with the Russian trunk prefix (`8921…` → `7921…`) or an international one dropped (`00…`;
    # `810…` as `+…`).
    variants: tuple[str, ...]


def number_query(query: str) -> NumberQuery | None:
    """``query`` read as (a part of) a number in any format, with or without an extension after it
    (`8 (921) 946-27-61 доб. 12`, `+7 921`, `946-27`), or None when it is not one (a name, fewer than 3
    digits). The one reading of a searched number: the contacts' search, the call log's and the API's."""
    number = phones.split_extension((query or "").strip())[0]
    if not looks_like_number(number):
        return None
    digits = phones.digits_only(number)
    variants = [digits]
    if digits.startswith("8"):
        variants.append("7" + digits[1:])  # a partial Russian number typed with the trunk prefix
    if digits.startswith("00"):
        variants.append(digits[2:])
    if digits.startswith("810") and len(digits) > 3:
        # Russia's international prefix 8~10 (`8 10 375 29 123`): no +7 code starts with 1, so a part typed
        # this way is the start of a foreign number; it found nothing (a whole one was read so already).
        # With its "+": the country code where the stored E.164 starts, not any "375" inside a number.
        variants.append("+" + digits[3:])
    return NumberQuery(e164=phones.normalize(number) or "", digits=digits, variants=tuple(variants))


def number_q(number: NumberQuery, *, e164_field: str, digits_fields: tuple[str, ...] = ()) -> Q:
    """The rows whose number matches ``number``: a whole number by E.164 equality on ``e164_field`` (an
    index probe); a part as a substring of the stored E.164 (any of ``number.variants``) or of the
    digits kept of a number that is not a phone number (``digits_fields``: the digits as typed)."""
    if number.e164:
        return Q(**{e164_field: number.e164})
    condition = Q()
    for field in digits_fields:
        condition |= Q(**{f"{field}__contains": number.digits})
    for variant in number.variants:
        condition |= Q(**{f"{e164_field}__contains": variant})
    return condition


def contacts_search(*, queryset: QuerySet[Contact], query: str) -> QuerySet[Contact]:
    """The contacts of ``queryset`` matching a name, company, email or any number format; newest first.

    A whole number (`89219462761`, `+7 921 946-27-61`, `…@pstn`) is one index probe, like a call's
    lookup. Anything else is a case-insensitive substring match on name/company/email, and on the
    digits of the numbers when the query looks like a partial number (`946-27`, `8 921 946`,
    `+7 (921)`). On PostgreSQL the substring matches use trigram indexes (pg_trgm, GIN on
    ``UPPER(name)``… and on the numbers' digits; contacts/migrations/0002_search_trigram.py): the ids
    come from one UNION of index scans, then ``queryset`` is filtered by them, so whatever narrowed
    ``queryset`` (visibility) applies. SQLite runs the same query by scanning (same results; its LIKE
    folds ASCII letters only).
    """
    query = (query or "").strip()
    if not query:
        return queryset.order_by("-id")
    # A number with an extension written after it (`… доб. 12`, `ext. 12`, `#12`) is searched as the number.
    number = number_query(query)
    if number is not None and number.e164:
        matching = PhoneNumber.objects.filter(~Q(e164=""), e164=number.e164).values("contact_id")
        return queryset.filter(pk__in=matching).order_by("-id")
    ids: QuerySet[Any] = (
        Contact.objects.filter(
            Q(name__icontains=query) | Q(company__icontains=query) | Q(email__icontains=query)
        )
        .order_by()
        .values("id")
    )
    if number is not None:
        matching_q = number_q(number, e164_field="e164", digits_fields=("raw_digits",))
        by_number = PhoneNumber.objects.filter(matching_q).order_by().values("contact_id")
        ids = ids.union(by_number)
    if connection.vendor == "postgresql":
        # The ids first, as a list, when there are not too many: PostgreSQL then knows how many rows
        # match and reads just those by primary key. Given the subquery instead, it guesses from the
        # trigram statistics — often thousands of rows for one — and then reads the whole contact table
        # for the count, or walks it newest first for the page (seconds at a million contacts).
        # One array parameter (`id = ANY(%s)`), not thousands of IN parameters to build and parse.
        found = list(ids[: SEARCH_ID_LIST_LIMIT + 1].values_list("id", flat=True))
        if len(found) <= SEARCH_ID_LIST_LIMIT:
            return queryset.filter(EqualsAny(F("pk"), sorted(found))).order_by("-id")  # in index order
    return queryset.filter(pk__in=ids).order_by("-id")


def contact_search(*, query: str = "") -> QuerySet[Contact]:
    """The contact list's search over every current contact, with what the list shows of each."""
    visible = Contact.objects.current().select_related("personal_manager").prefetch_related("numbers")
    return contacts_search(queryset=visible, query=query)
