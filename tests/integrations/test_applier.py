"""The applier: the one process that applies stored notifications (integrations/applier.py).

The notify URL stores and answers; the applier applies what pops an operator's card first, then the ends of
calls, then bookkeeping; a failure costs only its own notification an attempt, tried again with backoff; and
two appliers never apply a notification twice. The process tests run the applier's loop in a thread on
committed rows (``transactional_db``), as the process sees them.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count
from django.test import Client
from django.utils import timezone, translation

from calls.models import Call, CallEvent
from calls.routing import routing_pool_shutdown
from integrations import applier as applier_module
from integrations.applier import MAX_ATTEMPTS, Applier, applier_drain, apply_batch
from integrations.inbox import notification_store
from integrations.models import Integration, NotificationEvent
from integrations.mtt.callinfo import parse_call_info
from integrations.mtt.notifications import parse_body, parse_envelope
from integrations.spool import notification_spool
from monitoring import metrics
from tests.calls.payloads import incoming_answered
from tests.concurrency import at_once
from tests.waiting import wait_until

Status = NotificationEvent.Status


def base() -> str:
    return uuid.uuid4().hex + "_00015ED635780FC7"


def store(integration: Integration, body: dict[str, Any], **kwargs: Any) -> int:
    return notification_store(integration_id=integration.pk, envelope=parse_envelope(body), **kwargs).id


def statuses() -> dict[str, int]:
    return dict(
        NotificationEvent.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )


def call_events_per_notification() -> list[int]:
    return list(
        CallEvent.objects.values("notification_id").annotate(n=Count("pk")).values_list("n", flat=True)
    )


# --- what is applied, and in which order --------------------------------------------------------------


@pytest.mark.django_db
def test_cards_come_first_then_ends_of_calls_then_bookkeeping(integration: Integration) -> None:
    _line_trying, trying, _showing, connected, line_finished, finished = incoming_answered(base=base())
    recorded = {
        "event": "callNotifications",
        "accountId": "x",
        "result": {
            "callInfo": {"call": {"id": finished["result"]["callInfo"]["call"]["id"]}, "state": "recorded"}
        },
    }
    # Stored in the worst order: bookkeeping first, the cards last.
    ids = {
        "recorded": store(integration, recorded),
        "finished": store(integration, finished),
        "line_finished": store(integration, line_finished),
        "trying": store(integration, trying),
        "connected": store(integration, connected),
    }
    order = []
    while True:
        batch = apply_batch(limit=2)
        if not batch.taken:
            break
        order.append(sorted(batch.ids))
    assert order == [
        sorted([ids["trying"], ids["connected"]]),  # what pops or updates a card
        sorted([ids["finished"], ids["line_finished"]]),  # the end of the call
        [ids["recorded"]],  # bookkeeping
    ]
    assert statuses() == {Status.APPLIED: 5}
    assert Call.objects.get().status == Call.Status.ANSWERED


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
def test_a_claim_of_cards_leaves_the_bookkeeping_unlocked(integration: Integration) -> None:
    # Under load, the cards come a few at a time while the ends of calls wait in hundreds. A claim takes the
    # cards only: it must not lock (nor read) the rows of a later priority it will not apply, or the other
    # applier finds them locked and every claim pays for a full batch to apply a few cards.
    calls = [incoming_answered(base=base()) for _n in range(4)]
    ends = [store(integration, notes[5]) for notes in calls]  # the staff legs' finished: ends of calls
    cards = [store(integration, notes[1]) for notes in calls[:2]]  # two trying: cards
    claimed: dict[str, Any] = {}

    def other_applier() -> None:
        with transaction.atomic():
            events, more = applier_module._claim(20)
            claimed["other"] = ([e.pk for e in events], more)

    with transaction.atomic():
        events, more = applier_module._claim(20)
        assert ([e.pk for e in events], more) == (cards, True)  # ends of calls are waiting too
        # Meanwhile another applier finds every end of a call free to take.
        at_once([other_applier])
    assert claimed["other"] == (ends, False)
    # Only cards waiting: nothing more to look for after them.
    NotificationEvent.objects.filter(pk__in=ends).update(status=Status.APPLIED)
    with transaction.atomic():
        events, more = applier_module._claim(20)
        assert ([e.pk for e in events], more) == (cards, False)
        assert events[0].integration_synced_at == integration.last_sync_at


@pytest.mark.django_db
def test_a_batch_locks_its_calls_in_one_order(integration: Integration, monkeypatch: Any) -> None:
    # Two appliers whose batches share calls must lock the call rows in the same order, or PostgreSQL
    # aborts one of them as a deadlock (measured: a batch redone one by one every 1.5 s at 20 calls/s).
    first, second = sorted([base(), base()])
    a = incoming_answered(base=first)
    b = incoming_answered(base=second)
    for body in (b[1], a[1], b[2], a[2]):  # interleaved: the second call's notifications first
        store(integration, body)
    seen: list[str] = []
    real = applier_module.apply_one

    def recording(event: NotificationEvent) -> str:
        seen.append(event.body["result"]["callInfo"]["call"]["id"])
        return real(event)

    monkeypatch.setattr(applier_module, "apply_one", recording)
    batch = apply_batch()
    assert batch.applied == 4
    keys = [call_id.split("~")[0] for call_id in seen]
    assert keys == sorted(keys)  # by call, whatever the arrival order
    # Within a call, the arrival order is kept (a stable sort).
    assert [x for x in seen if x.startswith(first)] == [a[1]["result"]["callInfo"]["call"]["id"],
                                                         a[2]["result"]["callInfo"]["call"]["id"]]  # fmt: skip


@pytest.mark.parametrize("call_id", ["abc_00015ED635780FC7~2o", 1234567, "no-tilde"])
def test_a_batch_is_ordered_by_the_call_it_locks(call_id: Any) -> None:
    # The order key is the call key applying locks by, the Call-ID read as parse_call_info reads it (a
    # number too), so two appliers order the same calls the same way.
    body = {
        "event": "callNotifications",
        "result": {"callInfo": {"call": {"id": call_id}, "state": "trying"}},
    }
    event = NotificationEvent(body=body)
    assert applier_module._lock_order(event) == parse_call_info(body).call_key
    assert applier_module._lock_order(NotificationEvent(body={"event": "x", "result": {}})) == ""


@pytest.mark.django_db
def test_a_failing_notification_costs_only_itself_an_attempt_and_is_tried_again_later(
    integration: Integration,
) -> None:
    calls = incoming_answered(base=base())
    good = store(integration, calls[1])
    bad = store(integration, calls[2])
    real = applier_module.call_apply_notification

    def flaky(*, event: NotificationEvent) -> str:
        if event.pk == bad:
            raise RuntimeError("a bug")
        return real(event=event)

    before = metrics.sample("mttcrm_notifications_apply_errors_total")
    with mock.patch.object(applier_module, "call_apply_notification", flaky):
        result = applier_drain()
    assert (result.applied, result.failed) == (1, 1)
    assert NotificationEvent.objects.get(pk=good).status == Status.APPLIED
    failed = NotificationEvent.objects.get(pk=bad)
    assert failed.status == Status.PENDING
    assert failed.attempts == 1
    assert failed.error == "applying failed: RuntimeError: a bug"
    assert failed.retry_at is not None and failed.retry_at > timezone.now()
    assert metrics.sample("mttcrm_notifications_apply_errors_total") == before + 1

    # Not before its retry is due...
    assert applier_drain().taken == 0
    # ...then it is applied, once.
    NotificationEvent.objects.filter(pk=bad).update(retry_at=timezone.now() - timedelta(seconds=1))
    assert applier_drain().applied == 1
    failed.refresh_from_db()
    assert (failed.status, failed.error, failed.retry_at) == (Status.APPLIED, "", None)
    assert call_events_per_notification() == [1, 1]


@pytest.mark.django_db
def test_a_notification_that_keeps_failing_is_set_aside(integration: Integration) -> None:
    pk = store(integration, incoming_answered(base=base())[1])
    NotificationEvent.objects.filter(pk=pk).update(attempts=MAX_ATTEMPTS - 1)
    with mock.patch.object(applier_module, "call_apply_notification", side_effect=ValueError("still broken")):
        applier_drain()
    event = NotificationEvent.objects.get(pk=pk)
    assert event.status == Status.FAILED
    assert event.attempts == MAX_ATTEMPTS
    assert event.error == "applying failed: ValueError: still broken"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "exc",
    [RuntimeError("a bug"), ValueError("line one\nline two"), KeyError("callInfo"), ZeroDivisionError()],
    ids=["runtime", "two-lines", "key", "no-message"],
)
def test_the_admin_says_in_russian_that_applying_failed(
    integration: Integration, admin_client: Client, exc: Exception
) -> None:
    """A failed row's error was the bare exception ("RuntimeError: a bug"): English only, nothing saying
    what failed. The admin now reads that applying failed in Russian; the exception follows as it was."""
    pk = store(integration, incoming_answered(base=base())[1])
    NotificationEvent.objects.filter(pk=pk).update(attempts=MAX_ATTEMPTS - 1)
    with mock.patch.object(applier_module, "call_apply_notification", side_effect=exc):
        applier_drain()
    event = NotificationEvent.objects.get(pk=pk)
    assert event.status == Status.FAILED
    page = admin_client.get(
        f"/admin/integrations/notificationevent/{pk}/change/", HTTP_ACCEPT_LANGUAGE="ru"
    ).content.decode()
    assert f"применить не удалось: {type(exc).__name__}" in page


@pytest.mark.django_db
def test_retries_back_off(integration: Integration) -> None:
    pk = store(integration, incoming_answered(base=base())[1])
    delays = []
    with mock.patch.object(applier_module, "call_apply_notification", side_effect=ValueError("x")):
        for _ in range(4):
            NotificationEvent.objects.filter(pk=pk).update(retry_at=None)
            before = timezone.now()
            applier_drain()
            delays.append((NotificationEvent.objects.get(pk=pk).retry_at - before).total_seconds())
    assert delays == sorted(delays)  # each wait longer than the one before (2, 4, 8, 16 s ± 20 %)
    assert delays[0] < 3 and delays[-1] > 12


@pytest.mark.django_db
def test_the_admins_apply_again_puts_the_row_back_in_the_queue(
    client: Client, admin_user: Any, integration: Integration
) -> None:
    pk = store(integration, incoming_answered(base=base())[1])
    NotificationEvent.objects.filter(pk=pk).update(status=Status.FAILED, attempts=MAX_ATTEMPTS, error="x")
    client.force_login(admin_user)
    client.post(
        "/admin/integrations/notificationevent/", {"action": "reapply", "_selected_action": [pk]}, follow=True
    )
    assert NotificationEvent.objects.get(pk=pk).status == Status.PENDING
    assert applier_drain().applied == 1


@pytest.mark.django_db
def test_apply_again_leaves_what_we_do_not_understand_ignored_and_says_so(
    client: Client, admin_user: Any, integration: Integration, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows ignored because we do not understand them went back to the queue: the applier then raised
    KeyError 'result' (an ERROR with a traceback) up to MAX_ATTEMPTS times. They stay ignored, with their
    reason; only what can be applied is queued, and the admin is told how many of each."""
    unreadable = [
        b'{"event": "callNotifications", "result": {"x": NaN}}',
        b'{"event": "e", "result": {"x": 1e999}}',
        b"[1, 2, 3]",
        b'{"event": "callNotifications", "result": {"callInfo": {"call": {"id": "~~~"}, "state": "trying"}}}',
        b'{"event": "vpbxNotifications", "result": {"eventType": "galaxyChanged"}}',
    ]
    ignored = [
        notification_store(integration_id=integration.pk, envelope=parse_body(raw)).id for raw in unreadable
    ]
    reasons = dict(NotificationEvent.objects.values_list("pk", "error"))
    assert all(reasons[pk] for pk in ignored)
    good = store(integration, incoming_answered(base=base())[1])
    NotificationEvent.objects.filter(pk=good).update(status=Status.FAILED, attempts=MAX_ATTEMPTS, error="x")
    client.force_login(admin_user)
    with translation.override("ru"):
        response = client.post(
            "/admin/integrations/notificationevent/",
            {"action": "reapply", "_selected_action": [*ignored, good]},
            follow=True,
            HTTP_ACCEPT_LANGUAGE="ru",
        )
    said = [str(m) for m in response.context["messages"]]
    assert "Заново применено уведомлений: 1." in said
    assert any(m.startswith("Оставлено как есть: 5") for m in said), said
    for pk in ignored:
        row = NotificationEvent.objects.get(pk=pk)
        assert (row.status, row.error) == (Status.IGNORED, reasons[pk])
    with caplog.at_level("INFO"):
        assert applier_drain().applied == 1
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert statuses() == {Status.IGNORED: 5, Status.APPLIED: 1}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"unreadable_body": '{"event": "callNotifications", "x": NaN}'},
        {"event": "callNotifications"},
        {"event": "callNotifications", "result": {"callInfo": {"state": "trying"}}},
        {"event": "vpbxNotifications", "result": None},
        [1, 2],
    ],
)
def test_a_queued_row_without_result_ends_ignored_with_a_reason_not_failed(
    integration: Integration, body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Defence in depth: whatever put it in the queue (a hand-made row, an older version), a stored body that
    is no notification we apply never raises KeyError in the applier."""
    event = NotificationEvent.objects.create(
        integration=integration, event="callNotifications", body=body, fingerprint="f"
    )
    with caplog.at_level("INFO"):
        batch = applier_drain()
    assert (batch.ignored, batch.failed) == (1, 0)
    event.refresh_from_db()
    assert event.status == Status.IGNORED
    assert event.error
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]


@pytest.mark.django_db
def test_the_command_applies_what_is_due_once(integration: Integration, capsys: Any) -> None:
    for body in incoming_answered(base=base())[:3]:
        store(integration, body)
    call_command("mtt", "applier", "--once")
    assert "Applied 3" in capsys.readouterr().out
    assert statuses() == {Status.APPLIED: 3}


# --- two appliers -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
def test_two_appliers_apply_every_notification_exactly_once(integration: Integration) -> None:
    for _n in range(10):
        for body in incoming_answered(base=base()):
            store(integration, body)
    at_once([applier_drain, applier_drain, applier_drain])
    routing_pool_shutdown()
    assert statuses() == {Status.APPLIED: 60}
    assert call_events_per_notification() == [1] * 60
    assert Call.objects.count() == 10


# --- the process --------------------------------------------------------------------------------------


@pytest.fixture
def running_applier(transactional_db: Any) -> Iterator[Callable[[], Applier]]:
    started: list[tuple[Applier, threading.Thread]] = []

    def start() -> Applier:
        applier = Applier()
        thread = threading.Thread(target=applier.run, daemon=True)
        thread.start()
        started.append((applier, thread))
        return applier

    yield start
    for applier, _thread in started:
        applier.stop.set()
    for _applier, thread in started:
        thread.join(10)
        assert not thread.is_alive(), "the applier did not stop"
    routing_pool_shutdown()


def test_the_running_applier_applies_what_the_notify_url_stores(
    running_applier: Callable[[], Applier], integration: Integration
) -> None:
    """PostgreSQL: woken by the storing statement's NOTIFY; SQLite: it looks every 0.1 s."""
    running_applier()
    client = Client()
    for body in incoming_answered(base=base()):
        response = client.post(integration.notify_path, body, content_type="application/json")
        assert response.status_code == 200
    wait_until(lambda: statuses() == {Status.APPLIED: 6}, what="the applier to apply all six")
    assert Call.objects.get().status == Call.Status.ANSWERED


def test_the_running_applier_stores_what_was_spooled(
    running_applier: Callable[[], Applier], integration: Integration
) -> None:
    """What the notify URL kept on disk while the database was away is stored (and then applied) by the
    applier, under its original arrival time."""
    import json

    arrived = timezone.now() - timedelta(minutes=5)
    body = incoming_answered(base=base())[1]
    notification_spool(token=integration.notify_token, body=json.dumps(body).encode(), received_at=arrived)
    running_applier()
    wait_until(lambda: statuses() == {Status.APPLIED: 1}, what="the spooled notification to be applied")
    assert NotificationEvent.objects.get().received_at == arrived


def test_the_applier_stops_on_request(running_applier: Callable[[], Applier]) -> None:
    applier = running_applier()
    applier.stop.set()  # the fixture asserts the thread ends within seconds
