"""mttcrm.rows: model rows read and written with plain SQL must be exactly what the ORM reads and writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls.models import Call, CallEvent, CallLeg, RecordingAccess
from integrations.models import NotificationEvent
from mttcrm.rows import columns, instances, row_insert, row_update, shape

pytestmark = pytest.mark.django_db


def _read(model: Any, pk: int, *, extra_sql: str = "", extra: tuple[str, ...] = ()) -> Any:
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT {columns(model, "t")}{extra_sql} FROM {table} t WHERE t."id" = %s', [pk])
        found = instances(model, cursor.fetchall(), extra=extra)
    assert len(found) == 1
    return found[0]


def _fields(obj: Any) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


@pytest.fixture
def leg(integration: Any) -> CallLeg:
    call = Call.objects.create(integration=integration, call_key="k1", started_at=timezone.now())
    return CallLeg.objects.create(
        call=call,
        integration=integration,
        leg_id="k1~1",
        is_line_leg=True,
        forwarders=[{"id": "an_1"}],
        field_ranks={"tag": 2},
        states=["showing", "trying"],
        started_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        duration=42,
    )


def test_a_row_read_is_the_orms_row(leg: CallLeg) -> None:
    mine = _read(CallLeg, leg.pk)
    orm = CallLeg.objects.get(pk=leg.pk)
    assert _fields(mine) == _fields(orm)
    # The types too: JSON parsed, booleans as booleans, times aware.
    assert mine.forwarders == [{"id": "an_1"}] and mine.field_ranks == {"tag": 2}
    assert mine.is_line_leg is True
    assert timezone.is_aware(mine.started_at) and timezone.is_aware(mine.first_seen_at)
    assert mine._state.adding is False and mine._state.db == connection.alias
    # An instance like any other: its relations load.
    assert mine.call.call_key == "k1"


def test_joined_columns_become_attributes(leg: CallLeg) -> None:
    mine = _read(CallLeg, leg.pk, extra_sql=", 7, 'x'", extra=("seven", "x"))
    assert (mine.seven, mine.x) == (7, "x")


def test_an_update_writes_every_field_as_save_does(leg: CallLeg) -> None:
    before = CallLeg.objects.get(pk=leg.pk)
    mine = _read(CallLeg, leg.pk)
    mine.states = [*mine.states, "connected"]
    mine.forwarders = []
    mine.is_line_leg = False
    mine.connected_at = datetime(2026, 1, 2, 3, 5, tzinfo=UTC)
    mine.duration = None
    mine.reason = "Normal call clearing"
    row_update(mine)
    after = CallLeg.objects.get(pk=leg.pk)
    assert after.states == ["showing", "trying", "connected"]
    assert after.forwarders == [] and after.is_line_leg is False and after.duration is None
    assert after.connected_at == datetime(2026, 1, 2, 3, 5, tzinfo=UTC)
    assert after.reason == "Normal call clearing"
    # Untouched fields keep their values, auto_now_add included.
    assert after.first_seen_at == before.first_seen_at and after.leg_id == before.leg_id


def test_an_update_writes_only_what_changed_since_the_read(leg: CallLeg) -> None:
    mine = _read(CallLeg, leg.pk)
    # Written elsewhere after our read (the row is not ours to overwrite where we changed nothing).
    CallLeg.objects.filter(pk=leg.pk).update(reason="set elsewhere", duration=7)
    mine.duration = 43
    mine.states.append("connected")  # JSON changed in place: written all the same
    with CaptureQueriesContext(connection) as queries:
        row_update(mine)
    after = CallLeg.objects.get(pk=leg.pk)
    assert (after.duration, after.reason) == (43, "set elsewhere")
    assert after.states == ["showing", "trying", "connected"]
    [update] = [q["sql"] for q in queries.captured_queries]
    assert '"reason"' not in update and '"duration"' in update
    # What was written is the new "read": the next update writes only what changed after it.
    mine.reason = "Normal call clearing"
    with CaptureQueriesContext(connection) as queries:
        row_update(mine)
    [update] = [q["sql"] for q in queries.captured_queries]
    assert '"reason"' in update and '"duration"' not in update
    assert CallLeg.objects.get(pk=leg.pk).reason == "Normal call clearing"


def test_an_instance_from_elsewhere_is_written_whole(leg: CallLeg) -> None:
    orm = CallLeg.objects.get(pk=leg.pk)  # not read by mttcrm.rows: nothing to compare with
    CallLeg.objects.filter(pk=leg.pk).update(reason="set elsewhere")
    orm.duration = 1
    row_update(orm)
    assert (CallLeg.objects.get(pk=leg.pk).reason, CallLeg.objects.get(pk=leg.pk).duration) == ("", 1)


def test_an_update_moves_auto_now(integration: Any) -> None:
    call = Call.objects.create(integration=integration, call_key="k2")
    old = call.updated_at
    Call.objects.filter(pk=call.pk).update(updated_at=old - timedelta(hours=1))
    mine = _read(Call, call.pk)
    mine.status = Call.Status.ANSWERED
    row_update(mine)
    stored = Call.objects.get(pk=call.pk)
    assert stored.status == Call.Status.ANSWERED
    assert stored.updated_at >= old and stored.updated_at == mine.updated_at


def test_updating_a_row_that_is_gone_is_an_error(leg: CallLeg) -> None:
    mine = _read(CallLeg, leg.pk)
    CallLeg.objects.filter(pk=leg.pk).delete()
    with pytest.raises(CallLeg.DoesNotExist):
        row_update(mine)


def test_an_insert_is_a_saved_instance(leg: CallLeg, integration: Any) -> None:
    note = NotificationEvent.objects.create(
        integration=integration, event="callNotifications", body={"a": 1}, fingerprint="f" * 64
    )
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = row_insert(
        CallEvent(call=leg.call, leg=leg, notification=note, state="trying", occurred_at=at, received_at=at)
    )
    assert event.pk is not None and event._state.adding is False
    stored = CallEvent.objects.get(pk=event.pk)
    assert (stored.call_id, stored.leg_id, stored.notification_id) == (leg.call_id, leg.pk, note.pk)
    assert (stored.state, stored.occurred_at) == ("trying", at)
    # Defaults and auto_now_add, as save() would write them.
    new_leg = row_insert(CallLeg(call=leg.call, integration=integration, leg_id="k1~2"))
    stored_leg = CallLeg.objects.get(pk=new_leg.pk)
    assert stored_leg.forwarders == [] and stored_leg.states == [] and stored_leg.is_line_leg is False
    assert stored_leg.first_seen_at is not None and stored_leg.first_seen_at == new_leg.first_seen_at


def test_a_field_type_it_cannot_read_is_refused_up_front() -> None:
    # An IP address (a type of its own on PostgreSQL) would come back in the driver's type: refused.
    with pytest.raises(TypeError, match="ip"):
        shape(RecordingAccess)
