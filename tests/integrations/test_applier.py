"""NOTIFY_APPLY_IN=applier: the notify URL stores and wakes, the applier process applies (PostgreSQL).

The rows must be committed for another connection to see them and for NOTIFY to be delivered: these tests
use ``transactional_db`` and a real LISTEN connection, and run the applier's loop in a thread.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import psycopg
import pytest
from django.db import connection
from django.db.models import Count
from django.test import Client

from calls.models import Call, CallEvent, RoutingDecision
from calls.routing import routing_is_urgent, routing_pool_shutdown
from integrations.applier import Applier, _listen_connection
from integrations.inbox import INBOX_CHANNEL, notification_apply
from integrations.models import ExternalNumber, Integration, NotificationEvent
from integrations.mtt.notifications import parse_envelope
from mttcrm import metrics
from mttcrm.health import applier_sessions
from tests.calls.payloads import LINE, incoming_answered
from tests.waiting import wait_until

pytestmark = pytest.mark.usefixtures("postgres_only")


@pytest.fixture
def applier_mode(settings: Any) -> None:
    settings.NOTIFY_APPLY_IN = "applier"


@pytest.fixture
def mtt(transactional_db: Any) -> Integration:
    return Integration.objects.create(
        name="Applier",
        client_id="client-a",
        client_secret="secret-a",
        api_url="http://mtt.test",
        oauth_url="http://oauth.mtt.test",
        status=Integration.Status.CONNECTED,
    )


@pytest.fixture
def listener(transactional_db: Any) -> Iterator[psycopg.Connection]:
    conn = _listen_connection()
    yield conn
    conn.close()


@pytest.fixture
def running_applier(transactional_db: Any) -> Iterator[Callable[..., Applier]]:
    started: list[tuple[Applier, threading.Thread]] = []

    def start(**kwargs: Any) -> Applier:
        applier = Applier(poll_seconds=kwargs.pop("poll_seconds", 0.3), **kwargs)
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


def post(client: Client, integration: Integration, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(integration.notify_path, body, content_type="application/json")
    assert response.status_code == 200, response.content
    return dict(response.json())


def statuses() -> dict[str, int]:
    return dict(
        NotificationEvent.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )


def call_events_per_notification() -> list[int]:
    return list(
        CallEvent.objects.values("notification_id").annotate(n=Count("pk")).values_list("n", flat=True)
    )


def base() -> str:
    return uuid.uuid4().hex + "_00015ED635780FC7"


def test_the_notify_url_stores_and_wakes_the_applier_without_applying(
    applier_mode: None, mtt: Integration, listener: psycopg.Connection
) -> None:
    client = Client()
    first = incoming_answered(base=base())[1]  # the operator's leg rings: no parking involved
    before = metrics.sample("mttcrm_notifications_dispatched_total", {"to": "applier"})
    answer = post(client, mtt, first)

    assert answer["duplicate"] is False
    row = NotificationEvent.objects.get(pk=answer["id"])
    assert row.status == NotificationEvent.Status.PENDING  # acknowledged before it is applied
    assert not CallEvent.objects.exists() and not Call.objects.exists()
    woken = [note.payload for note in listener.notifies(timeout=5, stop_after=1)]
    assert woken == [str(row.pk)]
    assert metrics.sample("mttcrm_notifications_dispatched_total", {"to": "applier"}) == before + 1

    # The second copy is acknowledged as a duplicate and wakes nobody.
    again = post(client, mtt, first)
    assert again == {"ok": True, "id": row.pk, "duplicate": True}
    assert list(listener.notifies(timeout=0.5)) == []


def test_the_applier_applies_each_notification_once_as_it_arrives(
    applier_mode: None, mtt: Integration, running_applier: Callable[..., Applier]
) -> None:
    applier = running_applier(poll_seconds=30)  # only wake-ups: the periodic look must not do the work
    wait_until(_listening, what="the applier to LISTEN")
    client = Client()
    bodies = incoming_answered(base=base())
    ids = [post(client, mtt, body)["id"] for body in bodies]

    wait_until(lambda: statuses() == {"applied": len(bodies)}, what="every notification applied")
    assert sorted(CallEvent.objects.values_list("notification_id", flat=True)) == sorted(ids)
    assert call_events_per_notification() == [1] * len(bodies)
    call = Call.objects.get()
    assert call.status == "answered" and call.talk_seconds == 42
    assert applier.applied == len(bodies)


def _listening() -> bool:
    return applier_sessions() > 0


def test_rows_stored_while_no_applier_ran_are_applied_when_it_starts(
    applier_mode: None, mtt: Integration, running_applier: Callable[..., Applier]
) -> None:
    client = Client()
    bodies = incoming_answered(base=base()) + incoming_answered(base=base())
    for body in bodies:
        post(client, mtt, body)
    assert statuses() == {"pending": len(bodies)}  # nobody listened: the wake-ups are gone

    running_applier(poll_seconds=30)  # the catch-up at start, not the periodic look
    wait_until(lambda: statuses() == {"applied": len(bodies)}, what="the catch-up")
    assert call_events_per_notification() == [1] * len(bodies)
    assert Call.objects.count() == 2


def test_two_appliers_never_apply_one_notification_twice(
    applier_mode: None, mtt: Integration, running_applier: Callable[..., Applier]
) -> None:
    client = Client()
    bodies = [body for _ in range(4) for body in incoming_answered(base=base())]
    for body in bodies:
        post(client, mtt, body)
    first, second = running_applier(poll_seconds=0.2), running_applier(poll_seconds=0.2)

    wait_until(lambda: statuses() == {"applied": len(bodies)}, what="every notification applied")
    assert call_events_per_notification() == [1] * len(bodies)
    assert first.applied + second.applied == len(bodies)
    assert NotificationEvent.objects.filter(attempts=1).count() == len(bodies)


def test_a_claimed_row_is_skipped_by_a_second_apply(mtt: Integration) -> None:
    """SKIP LOCKED: while one transaction applies a row, another attempt returns "gone" at once."""
    envelope = parse_envelope(incoming_answered(base=base())[1])
    from integrations.inbox import notification_receive

    event, _created = notification_receive(integration=mtt, envelope=envelope)
    holding = threading.Event()
    release = threading.Event()
    outcome: list[str] = []

    def hold_the_row() -> None:
        from django.db import connection as thread_connection
        from django.db import transaction

        try:
            with transaction.atomic():
                NotificationEvent.objects.select_for_update().filter(pk=event.pk).first()
                holding.set()
                release.wait(10)
        finally:
            thread_connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        outcome.append(notification_apply(event_id=event.pk))
        assert time.monotonic() - started < 2  # skipped, not waited for
    finally:
        release.set()
        holder.join(10)
    assert outcome == ["gone"]
    assert NotificationEvent.objects.get(pk=event.pk).status == NotificationEvent.Status.PENDING
    assert notification_apply(event_id=event.pk) == "applied"
    assert notification_apply(event_id=event.pk) == "gone"
    assert CallEvent.objects.filter(notification=event).count() == 1


def test_applying_decrypts_no_secret(mtt: Integration, monkeypatch: Any) -> None:
    """The claim brings the integration along with its secrets deferred: decrypting three Fernet tokens
    per notification was CPU spent on nothing (only an MTT request reads them, and then loads them)."""
    from integrations import crypto
    from integrations.inbox import notification_receive

    event, _created = notification_receive(
        integration=mtt, envelope=parse_envelope(incoming_answered(base=base())[1])
    )

    def refuse(value: str) -> str:
        raise AssertionError("a secret was decrypted while applying")

    monkeypatch.setattr(crypto, "decrypt", refuse)
    assert notification_apply(event_id=event.pk) == "applied"
    assert CallEvent.objects.filter(notification=event).count() == 1
    monkeypatch.undo()
    claimed = NotificationEvent.objects.select_related("integration").get(pk=event.pk).integration
    assert claimed.client_secret == "secret-a"  # and they are there for whoever needs them


def test_the_sweep_leaves_an_appliers_backlog_to_it_and_retries_only_failures(
    applier_mode: None, mtt: Integration, settings: Any
) -> None:
    """Under load the appliers fall seconds behind: that backlog is theirs (taken in order). The Celery
    sweep retries what failed — and everything when no applier listens."""
    from datetime import timedelta

    from django.utils import timezone

    from integrations.inbox import notification_receive
    from integrations.tasks import sweep_inbox

    settings.CELERY_TASK_ALWAYS_EAGER = False  # count what it would queue, apply nothing
    untried, failed = (
        notification_receive(integration=mtt, envelope=parse_envelope(body))[0]
        for body in incoming_answered(base=base())[:2]
    )
    NotificationEvent.objects.filter(pk=failed.pk).update(attempts=1, error="RuntimeError: boom")
    NotificationEvent.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    queued: list[int] = []
    from integrations import tasks

    with mock.patch.object(tasks.apply_notification, "delay", side_effect=queued.append):
        conn = _listen_connection()  # an applier listening
        try:
            assert sweep_inbox() == 1
            assert queued == [failed.pk]
        finally:
            conn.close()
        wait_until(lambda: not _listening(), what="the listener gone")
        queued.clear()
        assert sweep_inbox() == 2  # nobody listens: the sweep takes everything pending
        assert sorted(queued) == sorted([untried.pk, failed.pk])


def test_a_failing_apply_is_rolled_back_counted_and_left_to_the_sweep(
    applier_mode: None, mtt: Integration, running_applier: Callable[..., Applier], monkeypatch: Any
) -> None:
    from calls import services

    def broken(applied: Any) -> None:
        raise RuntimeError("boom in a hook")

    monkeypatch.setattr(services, "IN_TRANSACTION_HOOKS", [*services.IN_TRANSACTION_HOOKS, broken])
    client = Client()
    answer = post(client, mtt, incoming_answered(base=base())[1])
    applier = running_applier(poll_seconds=0.2)

    row = wait_until(
        lambda: NotificationEvent.objects.filter(pk=answer["id"], attempts=1).first(), what="one attempt"
    )
    assert row.status == NotificationEvent.Status.PENDING and "boom in a hook" in row.error
    # Rolled back whole: no call, no leg, no event half-written.
    assert not Call.objects.exists() and not CallEvent.objects.exists()
    time.sleep(1.0)  # several periodic looks: a failed row is not retried in a loop
    assert NotificationEvent.objects.get(pk=answer["id"]).attempts == 1
    assert applier.applied == 0


def test_a_parked_calls_trying_is_applied_in_the_request_even_with_an_applier(
    applier_mode: None, mtt: Integration, settings: Any
) -> None:
    settings.ROUTING_DEADLINE_SECONDS = 4.5
    ExternalNumber.objects.create(integration=mtt, number=LINE, is_parking=True)
    client = Client()
    bodies = incoming_answered(base=base())
    line_trying, staff_trying = bodies[0], bodies[1]
    assert routing_is_urgent(mtt, parse_envelope(line_trying)) is True
    assert routing_is_urgent(mtt, parse_envelope(staff_trying)) is False

    parked = post(client, mtt, line_trying)
    ordinary = post(client, mtt, staff_trying)
    try:
        assert NotificationEvent.objects.get(pk=parked["id"]).status == NotificationEvent.Status.APPLIED
        assert RoutingDecision.objects.count() == 1  # decided within the request
        assert NotificationEvent.objects.get(pk=ordinary["id"]).status == NotificationEvent.Status.PENDING
    finally:
        routing_pool_shutdown()


def test_urgency_follows_parking_switches_and_ignores_outgoing_and_other_states(mtt: Integration) -> None:
    from calls.routing import parking_numbers_forget

    bodies = incoming_answered(base=base())
    line_trying = parse_envelope(bodies[0])
    assert routing_is_urgent(mtt, line_trying) is False  # no number parks
    number = ExternalNumber.objects.create(integration=mtt, number=LINE, is_parking=True)
    assert routing_is_urgent(mtt, line_trying) is False  # cached for a few seconds (speed only)
    parking_numbers_forget(mtt.pk)
    assert routing_is_urgent(mtt, line_trying) is True
    assert routing_is_urgent(mtt, parse_envelope(bodies[4])) is False  # the line leg's finished
    outgoing = dict(bodies[0], result={"callInfo": dict(bodies[0]["result"]["callInfo"], type="outgoing")})
    assert routing_is_urgent(mtt, parse_envelope(outgoing)) is False
    number.is_parking = False
    number.save()
    parking_numbers_forget(mtt.pk)
    assert routing_is_urgent(mtt, line_trying) is False


def test_the_applier_survives_the_database_going_away_and_comes_back(
    applier_mode: None, mtt: Integration, running_applier: Callable[..., Applier]
) -> None:
    """Its LISTEN connection terminated (a PostgreSQL restart, a failover): it reconnects, catches up."""
    running_applier(poll_seconds=30)
    wait_until(_listening, what="the applier to LISTEN")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE %s",
            [f"LISTEN {INBOX_CHANNEL}%"],
        )
    client = Client()
    bodies = incoming_answered(base=base())
    for body in bodies:
        post(client, mtt, body)  # wake-ups sent while nobody listens are lost: the catch-up finds them
    wait_until(lambda: statuses() == {"applied": len(bodies)}, timeout=20, what="applied after reconnecting")
    assert call_events_per_notification() == [1] * len(bodies)


def test_healthz_tells_whether_an_applier_listens(
    applier_mode: None, mtt: Integration, running_applier: Callable[..., Applier]
) -> None:
    client = Client()
    response = client.get("/healthz")
    assert response.status_code == 503
    check = response.json()["checks"]["applier"]
    assert check["ok"] is False and "no applier process is listening" in check["error"]

    running_applier(poll_seconds=30)
    wait_until(_listening, what="the applier to LISTEN")
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["applier"]["ok"] is True


def test_healthz_has_no_applier_check_when_requests_apply(mtt: Integration) -> None:
    assert "applier" not in Client().get("/healthz").json()["checks"]
