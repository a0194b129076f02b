"""Call notifications → calls, legs, events and contacts, whatever the order or duplication."""

from __future__ import annotations

import random
from typing import Any
from unittest import mock

import pytest

from calls.models import Call, CallEvent, CallLeg
from contacts.models import Contact
from integrations.models import NotificationEvent
from tests.calls import payloads as p
from tests.calls.apply_helpers import Notify, only_call, utc
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db


def snapshot(call: Call) -> dict[str, Any]:
    call.refresh_from_db()
    fields = [
        "direction", "status", "client_number", "client_number_raw", "contact_id", "line_id", "line_number",
        "workplace_id", "operator_id", "started_at", "answered_at", "ended_at", "wait_seconds", "talk_seconds",
        "end_reason",
    ]  # fmt: skip
    legs = {
        leg.leg_id: (
            leg.tag,
            leg.transport_id,
            leg.is_line_leg,
            leg.workplace_id,
            tuple(leg.states),
            leg.duration,
        )
        for leg in call.legs.all()
    }
    return {"call": {f: getattr(call, f) for f in fields}, "legs": legs, "events": call.events.count()}


# --- One test per guide fixture ------------------------------------------------------------------


def test_fixture_01_incoming_trying(notify: Notify, directory: dict[str, Any]) -> None:
    notify(load_fixture("notifications/01_incoming_trying.json"))
    call = only_call()
    assert call.direction == "incoming"
    assert call.status == Call.Status.RINGING
    assert call.call_key == "c166e238a4c211ea9d373863bb43daf8_00015ED635780FC7"
    assert call.client_number == "+78124241500"
    assert call.client_number_raw == "78124241500@pstn"
    assert call.line == directory["line"]
    # startTime is Moscow time without a zone: stored in UTC.
    assert call.started_at == utc("2020-06-02 08:18:16")
    leg = call.legs.get()
    assert leg.is_line_leg
    assert leg.tag == "hswdfry52vmykfla____.o"
    assert leg.transport_id == "10.133.33.136:5073"
    assert call.contact is not None
    assert call.contact.numbers.get().e164 == "+78124241500"
    assert CallEvent.objects.get().state == "trying"
    assert NotificationEvent.objects.get().status == NotificationEvent.Status.APPLIED


def test_fixture_02_outgoing_trying(notify: Notify, directory: dict[str, Any]) -> None:
    notify(load_fixture("notifications/02_outgoing_trying.json"))
    call = only_call()
    assert (call.direction, call.status) == ("outgoing", Call.Status.RINGING)
    assert call.client_number == "+79219462761"
    assert call.workplace == directory["wp_out"]
    assert call.operator == directory["petrov"]
    assert call.line == directory["line_8800"]
    leg = call.legs.get()
    assert leg.tag == "sdfе2n901-281028329"  # the Cyrillic "е" kept byte for byte
    assert leg.tag.encode() == "sdfе2n901-281028329".encode()
    assert call.started_at == utc("2020-06-24 12:01:45")


def test_fixture_03_recorded_before_anything_else(notify: Notify, directory: dict[str, Any]) -> None:
    notify(load_fixture("notifications/03_recorded.json"))
    call = only_call()
    leg = call.legs.get()
    assert leg.workplace == directory["wp_rec"]  # from the top-level accountId
    assert leg.states == ["recorded"]
    assert call.events.get().state == "recorded"
    assert call.contact is None  # no client number known yet


def test_fixture_04_outgoing_showing(notify: Notify, directory: dict[str, Any]) -> None:
    notify(load_fixture("notifications/04_outgoing_showing.json"))
    call = only_call()
    assert call.status == Call.Status.RINGING
    assert call.legs.get().offered_at == utc("2020-06-24 12:01:45")
    assert call.operator == directory["petrov"]


def test_fixture_05_outgoing_connected(notify: Notify, directory: dict[str, Any]) -> None:
    notify(load_fixture("notifications/05_outgoing_connected.json"))
    call = only_call()
    assert call.status == Call.Status.IN_PROGRESS
    assert call.answered_at == utc("2020-06-24 12:01:55")
    assert call.client_number == "+79219462761"


def test_fixture_06_outgoing_hiding(notify: Notify, directory: dict[str, Any]) -> None:
    notify(load_fixture("notifications/06_outgoing_hiding.json"))
    call = only_call()
    assert call.status == Call.Status.RINGING
    assert call.legs.get().hidden_at == utc("2020-06-24 12:01:45")


def test_fixture_07_incoming_finished(notify: Notify, directory: dict[str, Any]) -> None:
    notify(load_fixture("notifications/07_incoming_finished.json"))
    call = only_call()
    # Only "finished" with a talk duration (guide §6.1): the call was answered by that workplace.
    assert call.status == Call.Status.ANSWERED
    assert call.talk_seconds == 4
    assert call.end_reason == "Answer leg disconnected"
    assert call.operator == directory["ivanova"]
    assert call.line == directory["line"]  # from the callee's display_name
    assert call.legs.get().forwarders == ["an_prd100275045-3881851", "scheme_prd100275045-3885981"]


def test_fixture_08_outgoing_finished(notify: Notify, directory: dict[str, Any]) -> None:
    notify(load_fixture("notifications/08_outgoing_finished.json"))
    call = only_call()
    assert call.status == Call.Status.ANSWERED
    assert call.talk_seconds == 3
    assert call.end_reason == "Originate leg disconnected"
    assert call.ended_at is not None


# --- Whole calls ---------------------------------------------------------------------------------


def test_incoming_answered(notify: Notify, directory: dict[str, Any]) -> None:
    for body in p.incoming_answered(talk=42):
        notify(body)
    call = only_call()
    assert call.status == Call.Status.ANSWERED
    assert call.direction == "incoming"
    assert call.started_at == utc("2020-06-02 08:18:16")
    assert call.answered_at == utc("2020-06-02 08:18:25")
    assert call.wait_seconds == 9
    assert call.talk_seconds == 42
    assert call.ended_at == utc("2020-06-02 08:19:07")
    assert call.operator == directory["ivanova"]
    assert call.workplace == directory["wp_in"]
    assert call.line == directory["line"]
    assert call.end_reason == "Answer leg disconnected"
    assert call.legs.count() == 2
    assert call.legs.get(leg_id=f"{p.BASE}~1o").is_line_leg
    assert call.events.count() == 6
    assert Contact.objects.count() == 1


def test_incoming_missed(notify: Notify, directory: dict[str, Any]) -> None:
    for body in p.incoming_missed():
        notify(body)
    call = only_call()
    assert call.status == Call.Status.MISSED
    assert call.is_missed
    assert call.operator is None and call.answered_at is None
    assert call.talk_seconds == 0
    assert call.end_reason == "No answer"
    # The workplace it was offered to is kept on the leg (reports: offered but missed).
    assert call.legs.get(leg_id=f"{p.BASE}~2o").workplace == directory["wp_in"]
    assert call.legs.get(leg_id=f"{p.BASE}~2o").offered_at is not None


def test_outgoing_answered(notify: Notify, directory: dict[str, Any]) -> None:
    for body in p.outgoing(answered=True):
        notify(body)
    call = only_call()
    assert call.status == Call.Status.ANSWERED
    assert call.answered_at == utc("2020-06-24 12:01:55")
    assert call.wait_seconds == 10
    assert call.talk_seconds == 3
    assert call.ended_at == utc("2020-06-24 12:01:58")
    assert call.operator == directory["petrov"]
    assert call.client_number == "+79219462761"


def test_outgoing_not_answered(notify: Notify, directory: dict[str, Any]) -> None:
    for body in p.outgoing(answered=False):
        notify(body)
    call = only_call()
    assert call.status == Call.Status.NOT_ANSWERED
    assert call.is_missed
    assert call.operator == directory["petrov"]  # who called, even unanswered
    assert call.answered_at is None


@pytest.mark.parametrize(("duration", "status"), [(35, Call.Status.ANSWERED), (0, Call.Status.MISSED)])
def test_ip_sip_terminal_only_trying_and_finished(
    notify: Notify, directory: dict[str, Any], duration: int, status: str
) -> None:
    inc = {"type": "incoming", "caller": p.client_party()}
    notify(p.note(f"{p.BASE}~2o", "trying", callee=p.workplace_party(), start="2020-06-02 11:18:17", **inc))
    assert only_call().status == Call.Status.RINGING
    notify(p.note(f"{p.BASE}~2o", "finished", callee=p.workplace_party(), duration=duration, **inc))
    call = only_call()
    assert call.status == status
    assert call.talk_seconds == duration
    assert (call.operator == directory["ivanova"]) is (duration > 0)


SEQUENCES = {
    "incoming_answered": p.incoming_answered,
    "incoming_missed": p.incoming_missed,
    "outgoing_answered": lambda: p.outgoing(answered=True),
    "outgoing_not_answered": lambda: p.outgoing(answered=False),
}


def _replay(notify: Notify, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    # "finished" carries no time: the call ends when it was received. Pin the clock so replays in
    # other orders compare equal.
    with mock.patch("integrations.inbox.timezone.now", return_value=utc("2020-06-24 12:05:00")):
        for body in bodies:
            notify(body)
    return snapshot(only_call())


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_any_order_and_any_duplication_give_the_same_call(
    notify: Notify, directory: dict[str, Any], name: str
) -> None:
    bodies = SEQUENCES[name]()
    expected = _replay(notify, bodies)
    rng = random.Random(name)
    orders = [list(reversed(bodies))] + [rng.sample(bodies, len(bodies)) for _ in range(4)]
    # finished before connected, recorded-style late arrivals: covered by the reversed order.
    for order in orders:
        Call.objects.all().delete()
        NotificationEvent.objects.all().delete()
        Contact.objects.all().delete()
        doubled = [b for body in order for b in (body, body)]
        got = _replay(notify, doubled)
        expected["call"]["contact_id"] = got["call"]["contact_id"]  # a new contact each replay
        assert got == expected
        assert NotificationEvent.objects.count() == len(bodies)
        assert CallEvent.objects.count() == len(bodies)


def test_recorded_before_finished_still_ends_right(notify: Notify, directory: dict[str, Any]) -> None:
    bodies = p.outgoing(answered=True)
    recorded = {
        "event": "callNotifications",
        "result": {"callInfo": {"accountId": p.WP_OUTGOING, "call": {"id": p.OUT_ID}, "state": "recorded",
                                "urlRecord": "https://openapi-stage.mtt.ru/records/1/2020/06/24/a.mp3"}},
    }  # fmt: skip
    for body in [*bodies[:3], recorded, *bodies[3:]]:
        notify(body)
    call = only_call()
    assert call.status == Call.Status.ANSWERED
    assert call.talk_seconds == 3
    assert call.events.count() == 6


@pytest.mark.parametrize("state", ["teleporting", "exploding", " Exploding ", ""])
def test_unknown_state_is_stored_and_acknowledged_with_the_reason(
    notify: Notify, directory: dict[str, Any], state: str
) -> None:
    body = p.note("x~1o", state, type="incoming", caller=p.client_party(), callee=p.line_party())
    response = notify(body)
    assert response.json()["ok"] is True
    event = NotificationEvent.objects.get()
    assert event.status == NotificationEvent.Status.IGNORED
    # The admin shows the error: the reason is in the row, not only in the log.
    assert event.error == f"call state {state!r} is not one the guide describes (§10.1)"
    assert Call.objects.count() == 0


@pytest.mark.parametrize("call_id", ["~~~", "~9z", "~8z", "~", " ~1o", "   ", "\t"])
def test_a_call_id_with_no_call_id_before_the_tilde_touches_no_call(
    notify: Notify, directory: dict[str, Any], call_id: str
) -> None:
    """API.md: the part of call.id before '~' is what a call's legs share. Without it nothing says which call
    a leg belongs to: such legs were all joined into one Call (call_key ''). Kept, acknowledged, ignored."""
    notify(p.note(p.BASE + "~1o", "trying", type="incoming", caller=p.client_party(), callee=p.line_party()))
    for n, client in enumerate(["79219462761", "79219462762"]):
        body = p.note(
            call_id, "trying", type="incoming", caller=p.client_party(client), callee=p.line_party()
        )
        body["n"] = n
        response = notify(body)
        assert response.json()["ignored"] is True
    assert [c.call_key for c in Call.objects.all()] == [p.BASE]
    ignored = NotificationEvent.objects.filter(status=NotificationEvent.Status.IGNORED)
    assert ignored.count() == 2
    assert all("call.id" in e.error for e in ignored)


def test_a_pending_row_stored_before_the_checks_ends_ignored_with_its_reason(
    integration: Any, directory: dict[str, Any]
) -> None:
    """Rows stored as pending by an older version (an empty Call-ID, an unknown state) are not applied: the
    applier checks the body as the notify URL does, and the row ends ignored with the reason."""
    from integrations.applier import applier_drain

    bodies = [
        p.note("~9z", "trying", type="incoming", caller=p.client_party(), callee=p.line_party()),
        p.note("y~1o", "exploding", type="incoming", caller=p.client_party(), callee=p.line_party()),
        {"event": "vpbxNotifications", "result": {"eventType": "galaxyChanged"}},
    ]
    for n, body in enumerate(bodies):
        NotificationEvent.objects.create(
            integration=integration, event=body["event"], body=body, fingerprint=str(n)
        )
    assert applier_drain().ignored == 3
    errors = sorted(NotificationEvent.objects.values_list("error", flat=True))
    assert all(errors), errors
    assert any("galaxyChanged" in e for e in errors) and any("exploding" in e for e in errors)
    assert Call.objects.count() == 0


@pytest.mark.parametrize(
    "number",
    ["+79219462761", "79219462761", "89219462761", "0079219462761", "9219462761", "79219462761@pstn"],
)
def test_every_number_format_finds_the_same_contact(
    notify: Notify, directory: dict[str, Any], number: str
) -> None:
    notify(p.incoming_answered(base="first", client="+79219462761")[0])
    notify(p.incoming_answered(base="second", client=number)[0])
    assert Call.objects.count() == 2
    assert Contact.objects.count() == 1
    assert set(Call.objects.values_list("client_number", flat=True)) == {"+79219462761"}


def test_auto_create_off_leaves_the_call_without_contact(
    notify: Notify, directory: dict[str, Any], settings: Any
) -> None:
    settings.CONTACTS_AUTO_CREATE = False
    notify(p.incoming_answered()[0])
    assert only_call().contact is None
    assert Contact.objects.count() == 0


def test_known_contact_is_linked(notify: Notify, directory: dict[str, Any]) -> None:
    from contacts.services import contact_create

    contact = contact_create(name="ООО Ромашка", numbers=["8 (812) 424-15-00"])
    notify(p.incoming_answered()[0])
    assert only_call().contact == contact


def test_leg_rows_are_unique_per_call_id(notify: Notify, directory: dict[str, Any]) -> None:
    for body in p.incoming_answered():
        notify(body)
    assert CallLeg.objects.count() == 2


def test_what_leaves_after_the_commit_is_sent_once_per_notification_and_a_failure_is_harmless(
    notify: Notify, directory: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pushes leave after the commit, one set per applied notification; one that fails to leave never
    turns the applied notification into a failure (the page's resync shows the call)."""
    from calls import services

    sent: list[list[str]] = []

    def broken_push(messages: list[Any], *, received_at: float | None = None) -> None:
        sent.append([message["type"] for _group, message in messages])
        raise RuntimeError("push failed")

    monkeypatch.setattr(services, "push", broken_push)
    notify(p.outgoing(answered=True)[0])
    notify(p.outgoing(answered=True)[1])
    assert sent == [["call.show", "board.update"], ["call.show", "board.update"]]
    assert only_call().status == Call.Status.RINGING
    assert set(NotificationEvent.objects.values_list("status", flat=True)) == {
        NotificationEvent.Status.APPLIED
    }
