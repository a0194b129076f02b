"""The rows of one call as applying a notification reads them, in plain SQL.

Applying runs for every notification MTT sends (six to eight per call), and there the ORM's Python costs
more than the queries themselves (BENCHMARKS.md, "What applying costs"). So the reads of the hot path are
written out here, once, from the models' metadata, and turned into model instances by mttcrm.rows (which
also writes the call's rows: ``row_update``, ``row_insert``); values are always bound parameters.

- ``call_locked``: the call row, created if needed, locked for the rest of the transaction (one writer per
  call; PostgreSQL ``FOR UPDATE``, SQLite has one writer anyway);
- ``call_legs``: all its legs with, per workplace, who works there (``Staff``) — what merging, summarising
  and the screen pop need, in one query;
- ``staff_of``: the same for one workplace a leg has just been matched to;
- ``call_contact``: what the card shows of the client's contact (read with the call).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from contacts.models import Contact
from integrations.models import Workplace
from mttcrm.rows import columns, instances

from .models import Call, CallLeg
from .realtime.cards import ContactView, full_name


@dataclass(frozen=True)
class Staff:
    """Who a workplace is: its operator (None when nobody is assigned) and the name the board shows."""

    user_id: int | None
    person: str


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _col(model: Any, name: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(name).column)


# The names of the joined columns each query adds after the model's own: the aliases in its SQL (``_as``)
# and the attributes of the instances read (``_fetch``).
_STAFF = ("wp_user_id", "wp_name", "wp_sip", "u_first", "u_last", "u_login")
_CONTACT = ("ct_id", "ct_name", "ct_company", "ct_notes", "ct_manager_id", "u_first", "u_last", "u_login")
_MANAGER = ("u_first", "u_last", "u_login")


def _as(expressions: tuple[str, ...], names: tuple[str, ...]) -> str:
    return ", ".join(f"{expression} AS {name}" for expression, name in zip(expressions, names, strict=True))


@functools.cache
def _sql() -> dict[str, str]:
    user_model = get_user_model()
    user, wp, leg, contact, call = (_table(m) for m in (user_model, Workplace, CallLeg, Contact, Call))
    person = (
        f"u.{_col(user_model, 'first_name')}",
        f"u.{_col(user_model, 'last_name')}",
        f"u.{_col(user_model, user_model.USERNAME_FIELD)}",
    )
    workplace = (
        f"w.{_col(Workplace, 'user')}",
        f"w.{_col(Workplace, 'name')}",
        f"w.{_col(Workplace, 'sip_id')}",
    )
    names = _as((*workplace, *person), _STAFF)
    people = f'LEFT JOIN {user} u ON u."id" = w.{_col(Workplace, "user")}'
    manager = _col(Contact, "personal_manager")
    contact_columns = _as(
        (
            'ct."id"',
            f"ct.{_col(Contact, 'name')}",
            f"ct.{_col(Contact, 'company')}",
            f"ct.{_col(Contact, 'notes')}",
            f"ct.{manager}",
            *person,
        ),
        _CONTACT,
    )
    # Only the call's row is locked (OF c: PostgreSQL locks nothing on the outer join's nullable side).
    lock = ""
    if connection.features.has_select_for_update:
        lock = " FOR UPDATE OF c" if connection.features.has_select_for_update_of else " FOR UPDATE"
    return {
        "call": (
            f"SELECT {columns(Call, 'c')}, {contact_columns} FROM {call} c "  # noqa: S608
            f'LEFT JOIN {contact} ct ON ct."id" = c.{_col(Call, "contact")} '
            f'LEFT JOIN {user} u ON u."id" = ct.{manager} '
            f"WHERE c.{_col(Call, 'integration')} = %s AND c.{_col(Call, 'call_key')} = %s{lock}"
        ),
        "legs": (
            f"SELECT {columns(CallLeg, 'l')}, {names} FROM {leg} l "  # noqa: S608
            f'LEFT JOIN {wp} w ON w."id" = l.{_col(CallLeg, "workplace")} {people} '
            f"WHERE l.{_col(CallLeg, 'call')} = %s ORDER BY l.{_col(CallLeg, 'leg_id')}"
        ),
        "staff": f'SELECT {names} FROM {wp} w {people} WHERE w."id" = %s',  # noqa: S608
        "contact": (
            f"SELECT {columns(Contact, 'c')}, {_as(person, _MANAGER)} FROM {contact} c "  # noqa: S608
            f'LEFT JOIN {user} u ON u."id" = c.{manager} WHERE c."id" = %s'
        ),
    }


def _fetch(model: Any, query: str, params: list[Any], extra: tuple[str, ...]) -> list[Any]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return instances(model, cursor.fetchall(), extra=extra)


def call_locked(*, integration_id: int, call_key: str) -> Call:
    """The call row, created if needed, locked for the rest of the transaction; with what the card shows
    of its contact (``call_contact``)."""
    query = _sql()["call"]
    found = _fetch(Call, query, [integration_id, call_key], _CONTACT)
    if not found:
        # INSERT … ON CONFLICT DO NOTHING: a call created concurrently by another applier is no error.
        Call.objects.bulk_create(
            [Call(integration_id=integration_id, call_key=call_key)], ignore_conflicts=True
        )
        found = _fetch(Call, query, [integration_id, call_key], _CONTACT)
    return found[0]


def _staff(user_id: int | None, name: str, sip: str, first: str, last: str, login: str) -> Staff:
    """Who works at a workplace, from the ``_STAFF`` columns."""
    person = full_name(first, last, login) if user_id else ""
    return Staff(user_id=user_id, person=person or name or sip)


def call_legs(call_id: int) -> tuple[list[CallLeg], dict[int, Staff]]:
    """The call's legs (ordered by Call-ID) and who works at each of their workplaces."""
    legs: list[CallLeg] = []
    staff: dict[int, Staff] = {}
    row: Any  # a CallLeg with the joined workplace and operator columns
    for row in _fetch(CallLeg, _sql()["legs"], [call_id], _STAFF):
        legs.append(row)
        if row.workplace_id is not None:
            staff[row.workplace_id] = _staff(*(getattr(row, name) for name in _STAFF))
    return legs, staff


def staff_of(workplace_id: int) -> Staff:
    with connection.cursor() as cursor:
        cursor.execute(_sql()["staff"], [workplace_id])
        row = cursor.fetchone()
    return _staff(*row) if row is not None else Staff(user_id=None, person="")


def call_contact(call: Call) -> ContactView | None:
    """What the card shows of the call's contact: as ``call_locked`` read it with the call, unless the
    call has a new contact since (then one query)."""
    row: Any = call
    if not call.contact_id:
        return None
    if getattr(row, "ct_id", None) != call.contact_id:
        return contact_of(call.contact_id)
    manager = full_name(row.u_first, row.u_last, row.u_login) if row.ct_manager_id else ""
    return ContactView(
        pk=row.ct_id,
        name=row.ct_name,
        company=row.ct_company,
        notes=row.ct_notes,
        manager=manager,
        manager_id=row.ct_manager_id,
    )


def contact_of(contact_id: int | None) -> ContactView | None:
    if not contact_id:
        return None
    found = _fetch(Contact, _sql()["contact"], [contact_id], _MANAGER)
    if not found:
        return None
    row: Any = found[0]
    manager = full_name(row.u_first, row.u_last, row.u_login) if row.personal_manager_id else ""
    return ContactView(
        pk=row.pk,
        name=row.name,
        company=row.company,
        notes=row.notes,
        manager=manager,
        manager_id=row.personal_manager_id,
    )
