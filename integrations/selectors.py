"""Reads of the MTT side that are more than a one-line query."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Q

from contacts.phones import line_key

from .models import ExternalNumber, Integration

logger = logging.getLogger(__name__)


# Encrypted at rest (integrations/fields.py): decrypting them costs CPU that a notification never needs.
SECRET_FIELDS = ("client_secret", "access_token", "refresh_token")


def integration_for_notify_token(*, token: str, now: datetime) -> Integration | None:
    """The integration whose notify URL carries ``token``: its current token, or the previous one while
    that is in its grace period after a rotation. None for an unknown or expired token (a 404)."""
    if not _token_may_exist(token):
        return None
    found = Integration.objects.filter(
        Q(notify_token=token) | Q(previous_notify_token=token, previous_notify_token_expires_at__gt=now)
    )
    integration = found.order_by("pk").first()
    if integration is not None and integration.notify_token != token:
        _log_previous_token(integration.pk, integration.previous_notify_token_expires_at)
    return integration


@dataclass(frozen=True)
class NotifyTarget:
    """Whose notification a POST to the notify URL is: all the notify URL needs of its integration."""

    integration_id: int


def notify_target_for_token(*, token: str, now: datetime) -> NotifyTarget | None:
    """``integration_for_notify_token`` for a notification POST: the same rule, asked with plain SQL for
    just the integration's id (MTT POSTs dozens a second; the ORM's compilation of this OR was half of the
    notify URL's CPU, and an Integration instance would decrypt nothing but cost its construction)."""
    if not _token_may_exist(token):
        return None
    with connection.cursor() as cursor:
        cursor.execute(_token_sql(), [token, token, connection.ops.adapt_datetimefield_value(now)])
        row = cursor.fetchone()
    if row is None:
        return None
    integration_id, current, until = row
    if current != token:
        _log_previous_token(integration_id, until)
    return NotifyTarget(integration_id=int(integration_id))


def _token_may_exist(token: str) -> bool:
    # A NUL from the URL (%00) cannot even be sent to PostgreSQL.
    return bool(token) and "\x00" not in token


@functools.cache
def _token_sql() -> str:
    quote = connection.ops.quote_name
    table = quote(Integration._meta.db_table)
    current, previous, until = (
        quote(name) for name in ("notify_token", "previous_notify_token", "previous_notify_token_expires_at")
    )
    return (
        f'SELECT "id", {current}, {until} FROM {table} '  # noqa: S608
        f"WHERE {current} = %s OR ({previous} = %s AND {until} > %s) "
        f'ORDER BY "id" LIMIT 1'
    )


def _log_previous_token(integration_id: int, until: object) -> None:
    # Never the token itself in a log line: the integration and until when the old URL works.
    logger.info(
        "Integration %s: request on the previous notify URL (accepted until %s); "
        "paste the new notify URL into the MTT portal",
        integration_id,
        until,
    )


# --- Our lines in whatever form MTT names them -------------------------------------------------------


def external_number_for(*, integration_id: int, raw: str) -> ExternalNumber | None:
    """The line (external number) ``raw`` names, in any form MTT sends it (guide §6.4:
    ``84996497803``, ``0074996497803``, ``+74996497803``, ``74996497803@pstn``, ``sip:…@…``), or None.

    One indexed lookup on ``normalized``; an active row wins over one the PBX no longer lists.
    """
    key = line_key(raw or "")
    if not key:
        return None
    return (
        ExternalNumber.objects.filter(integration_id=integration_id, normalized=key)
        .order_by("-is_active", "pk")
        .first()
    )


def external_number_ids_by_key(*, integration_id: int, parking_only: bool = False) -> dict[str, int]:
    """``line_key`` → ExternalNumber id for every line of the integration (``parking_only``: those
    with parking on), for callers that keep the directory in memory and look up with
    ``line_key(raw)``. An active row wins over an inactive one with the same key."""
    rows = ExternalNumber.objects.filter(integration_id=integration_id).exclude(normalized="")
    if parking_only:
        rows = rows.filter(is_parking=True)
    found: dict[str, int] = {}
    # Inactive first, so that an active row with the same key overwrites it.
    for key, pk in rows.order_by("is_active", "-pk").values_list("normalized", "pk"):
        found[key] = pk
    return found
