"""Call notifications with MTT's fields in forms the guide does not show (API.md, guide §6.4, §10.1): a
duration as text, a workplace's SIP ID as a URI, a start time in another format or from a broken clock,
hidden and junk caller ids. Each still gives the call, its operator and its contact right."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from calls.models import Call, CallbackTask
from contacts.models import Contact
from integrations.models import NotificationEvent
from tests.calls import payloads as p
from tests.calls.apply_helpers import Notify, only_call, utc

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("duration", [35, "35", "35.0", 35.0, "0:35", "00:00:35"])
def test_a_talk_duration_as_text_or_a_clock_still_answers_the_call(
    notify: Notify, directory: dict[str, Any], duration: Any
) -> None:
    """§10.1 gives duration no type: "35" or "00:00:35" is as much a talk as 35 (only trying and finished
    come, §6.1, so the duration alone says the call was answered)."""
    inc = {"type": "incoming", "caller": p.client_party()}
    notify(p.note(f"{p.BASE}~2o", "trying", callee=p.workplace_party(), start="2020-06-02 11:18:17", **inc))
    finished = p.note(f"{p.BASE}~2o", "finished", callee=p.workplace_party(), **inc)
    finished["result"]["callInfo"]["duration"] = duration
    notify(finished)
    call = only_call()
    assert (call.status, call.talk_seconds, call.operator) == (Call.Status.ANSWERED, 35, directory["ivanova"])


WORKPLACE_FORMS = ["{}", "sip:{}@10.133.33.136", "<sip:{}@vpbx.mtt.ru>", "{}@vpbx.mtt.ru", "+{}", "00{}"]


@pytest.mark.parametrize("form", WORKPLACE_FORMS)
def test_a_workplace_named_in_another_form_is_still_the_operators(
    notify: Notify, directory: dict[str, Any], form: str
) -> None:
    """Guide §6.4: identifiers come as the PBX received them (the client's accountId is "…@pstn"). A
    workplace's SIP ID written as a SIP URI, with a domain or a "+" is the same workplace: its operator's
    card pops and the call is theirs; the SIP ID is never taken for the client's number."""
    workplace = p.workplace_party(form.format(p.WP_INCOMING))
    inc = {"type": "incoming", "caller": p.client_party()}
    with mock.patch("calls.services.push") as push:
        notify(p.note(f"{p.BASE}~2o", "showing", callee=workplace, start="2020-06-02 11:18:17", **inc))
    groups = [group for call in push.call_args_list for group, _message in call.args[0]]
    assert f"operator.{directory['ivanova'].pk}" in groups
    notify(p.note(f"{p.BASE}~2o", "finished", callee=workplace, duration=20, **inc))
    call = only_call()
    assert (call.operator, call.workplace) == (directory["ivanova"], directory["wp_in"])
    assert call.client_number == "+78124241500"


@pytest.mark.parametrize("form", WORKPLACE_FORMS)
def test_an_outgoing_call_from_a_workplace_named_in_another_form(
    notify: Notify, directory: dict[str, Any], form: str
) -> None:
    bodies = p.outgoing(answered=True)
    for body in bodies:
        body["result"]["callInfo"]["caller"]["accountId"] = form.format(p.WP_OUTGOING)
        notify(body)
    call = only_call()
    assert (call.direction, call.status) == ("outgoing", Call.Status.ANSWERED)
    assert (call.operator, call.workplace) == (directory["petrov"], directory["wp_out"])
    assert call.client_number == "+79219462761"


# startTimes no working clock writes: the edges of what Python reads, clocks reset to 1970 or 2000 (as text,
# or as a Unix time), and the far future, in every form a startTime is read in.
BROKEN_CLOCKS = [
    "0001-01-01 00:00:00", "0001-01-01 02:59:59", "9999-12-31 23:59:59", "1969-12-31 23:59:59",
    "1970-01-01 00:00:01", "1970-01-01T03:00:00+03:00", "01.01.1970 00:00:00", "2000-01-01 00:00:00",
    "2099-01-01 00:00:00", "2100-12-31T23:59:59Z", "31.12.2100 23:59", 4102444799, "4102444799000",
]  # fmt: skip


@pytest.mark.parametrize("start", BROKEN_CLOCKS)
def test_a_start_time_from_a_broken_clock_counts_as_missing(
    notify: Notify, directory: dict[str, Any], start: str
) -> None:
    # Found by fuzzing: year 1 overflowed the conversion to UTC, year 9999 the duration arithmetic, and
    # the notification stayed pending with an OverflowError. Such a startTime is ignored now.
    call_id = f"{p.BASE}~1o"
    notify(
        p.note(
            call_id, "trying", type="incoming", caller=p.client_party(), callee=p.line_party(), start=start
        )
    )
    finished = p.note(call_id, "finished", type="incoming", caller=p.client_party(), callee=p.line_party())
    finished["result"]["callInfo"].update(startTime=start, duration=9_999_999)
    notify(finished)
    assert set(NotificationEvent.objects.values_list("status", flat=True)) == {
        NotificationEvent.Status.APPLIED
    }
    call = only_call()
    assert call.started_at is not None and call.started_at.year >= 2000  # the arrival time instead


def _moscow(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("Europe/Moscow")).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize("start", BROKEN_CLOCKS)
def test_one_notification_from_a_broken_clock_leaves_the_calls_times_as_the_others_say(
    notify: Notify, directory: dict[str, Any], settings: Any, start: Any
) -> None:
    """A call started by a sane trying, then a connected from a broken clock. "2099" was taken as the answer:
    the wait (2099 minus now, in seconds) overflowed the database's integer and the connected failed ten
    times (the call never showed as answered); "1970" started the call 56 years back. Now the connected
    counts at its arrival: the call starts when the trying says, is answered, and its wait is the real one."""
    settings.MTT_TIMEZONE = "Europe/Moscow"
    began = timezone.now().replace(microsecond=0) - timedelta(seconds=5)
    inc = {"type": "incoming", "caller": p.client_party(), "callee": p.workplace_party()}
    notify(p.note(f"{p.BASE}~2o", "trying", start=_moscow(began), **inc))
    connected = p.note(f"{p.BASE}~2o", "connected", **inc)
    connected["result"]["callInfo"]["startTime"] = start
    notify(connected)
    notify(p.note(f"{p.BASE}~2o", "finished", duration=20, **inc))
    assert set(NotificationEvent.objects.values_list("status", flat=True)) == {
        NotificationEvent.Status.APPLIED
    }
    call = only_call()
    assert call.status == Call.Status.ANSWERED
    assert call.started_at == began
    assert call.answered_at is not None and began <= call.answered_at <= timezone.now()
    assert call.wait_seconds is not None and call.wait_seconds < 3600


@pytest.mark.parametrize("hours", [-12, 0, 12, 23])
def test_a_start_time_hours_ahead_of_the_arrival_still_counts(
    notify: Notify, directory: dict[str, Any], settings: Any, hours: int
) -> None:
    # A PBX clock or an MTT_TIMEZONE off by hours is no broken clock: its startTime is taken as it says.
    settings.MTT_TIMEZONE = "Europe/Moscow"
    moment = timezone.now().replace(microsecond=0) + timedelta(hours=hours)
    notify(p.note(f"{p.BASE}~1o", "trying", start=_moscow(moment), type="incoming", caller=p.client_party(),
                  callee=p.line_party()))  # fmt: skip
    assert only_call().started_at == moment


@pytest.mark.parametrize(
    "start",
    ["2020-06-02T11:18:16", "2020-06-02T11:18:16+03:00", "2020-06-02T08:18:16Z", "2020-06-02 11:18:16.000",
     "02.06.2020 11:18:16", 1591085896, "1591085896", 1591085896000, "1591085896000"],
)  # fmt: skip
def test_a_start_time_in_another_format_starts_the_call_at_that_moment(
    notify: Notify, directory: dict[str, Any], start: Any
) -> None:
    # Once only "YYYY-MM-DD HH:MM:SS" was read; any other form fell back to the arrival time.
    trying = p.note(f"{p.BASE}~1o", "trying", type="incoming", caller=p.client_party(), callee=p.line_party())
    trying["result"]["callInfo"]["startTime"] = start
    notify(trying)
    assert only_call().started_at == utc("2020-06-02 08:18:16")
    assert NotificationEvent.objects.get().status == NotificationEvent.Status.APPLIED


@pytest.mark.parametrize(
    "hidden",
    ["anonymous", "Anonymous", "sip:anonymous@anonymous.invalid", '"Anonymous" <sip:anonymous@anonymous.invalid>',
     "restricted", "Private", "unavailable", "Скрыт"],
)  # fmt: skip
def test_a_hidden_caller_id_is_no_number(notify: Notify, directory: dict[str, Any], hidden: str) -> None:
    """A withheld number comes as a word in place of the number (RFC 3323's anonymous@anonymous.invalid, and
    the guide's accountId form "…@pstn"). It was shown to the operator as received ("anonymous@pstn"), with a
    link to make a contact of it. Now the call has no number: the card says "Unknown number" in words, no
    contact, nothing to call back; the leg keeps what came."""
    account = hidden if ":" in hidden else f"{hidden}@pstn"
    caller = {"accountId": account, "displayId": hidden, "id": hidden, "forwarderList": []}
    inc = {"type": "incoming", "caller": caller}
    with mock.patch("calls.services.push") as push:
        notify(
            p.note(f"{p.BASE}~2o", "showing", callee=p.workplace_party(), start="2020-06-02 11:18:17", **inc)
        )
    [card] = [m["call"] for c in push.call_args_list for g, m in c.args[0] if g.startswith("operator.")]
    assert (card["number"], card["number_display"], card["create_contact_url"]) == ("", "", None)
    notify(p.note(f"{p.BASE}~2o", "finished", callee=p.workplace_party(), duration=0, **inc))
    call = only_call()
    assert (call.status, call.client_number, call.client_number_raw, call.contact) == (
        Call.Status.MISSED,
        "",
        "",
        None,
    )
    assert call.legs.get().caller_id == hidden
    assert not Contact.objects.exists() and not CallbackTask.objects.exists()


# --- caller ids as the network gave them (API.md "Numbers arrive as the network gave them") --------------


def _incoming_from(caller_id: Any) -> dict[str, Any]:
    party = {"id": caller_id, "displayId": caller_id, "forwarderList": []}
    return p.note(p.BASE + "~1o", "trying", type="incoming", caller=party, callee=p.line_party())


@pytest.mark.parametrize(
    ("caller_id", "raw", "e164", "extension"),
    [
        ("＋７９２１９４６００１７", "＋７９２１９４６００１７", "+79219460017", ""),
        ("٧٩٢١٩٤٦٠٠١٧", "٧٩٢١٩٤٦٠٠١٧", "+79219460017", ""),
        ("+7 921 946 00 09 доб. 12", "+7 921 946 00 09 доб. 12", "+79219460009", "12"),
        (79219462761, "79219462761", "+79219462761", ""),  # a JSON integer
    ],
)
def test_a_caller_id_in_any_form_gives_the_number_and_its_contact(
    notify: Notify, directory: dict[str, Any], caller_id: Any, raw: str, e164: str, extension: str
) -> None:
    notify(_incoming_from(caller_id))
    call = only_call()
    assert (call.client_number_raw, call.client_number) == (raw, e164)
    assert call.contact is not None
    number = call.contact.numbers.get()
    assert (number.e164, number.extension) == (e164, extension)


@pytest.mark.parametrize(
    ("caller_id", "raw"),
    [
        (7.9e10, "79000000000.0"),  # a JSON float
        ("-1", "-1"),
        (-79219462761, "-79219462761"),
        ("7" * 60, "7" * 60),
        ("12345", "12345"),  # a short number: no client of ours
    ],
)
def test_a_junk_caller_id_is_kept_raw_and_makes_no_contact(
    notify: Notify, directory: dict[str, Any], caller_id: Any, raw: str
) -> None:
    notify(_incoming_from(caller_id))
    call = only_call()
    assert (call.client_number_raw, call.client_number, call.contact_id) == (raw, "", None)
    assert call.legs.get().caller_id == raw
    assert not Contact.objects.exists()
    assert NotificationEvent.objects.get().status == NotificationEvent.Status.APPLIED


@pytest.mark.parametrize("sent", [True, False])
def test_a_caller_sent_as_json_booleans_is_no_number_and_no_name(
    notify: Notify, directory: dict[str, Any], sent: bool
) -> None:
    """A caller whose every field is true (or false): the call showed "True" as its client's number and the
    leg "True" as the caller's. It is a call without a number, as one with null fields is."""
    caller = {"id": sent, "displayId": sent, "accountId": sent, "displayName": sent, "forwarderList": [sent]}
    callee = {**p.line_party(), "displayName": sent}
    notify(p.note(f"{p.BASE}~1o", "trying", type="incoming", caller=caller, callee=callee))
    finished = p.note(f"{p.BASE}~1o", "finished", type="incoming", caller=caller, callee=callee, duration=0)
    finished["result"]["callInfo"].update(reason=sent, reasonCode=sent)
    notify(finished)
    call = only_call()
    assert (call.client_number_raw, call.client_number, call.contact_id) == ("", "", None)
    assert (call.end_reason, call.end_reason_code) == ("", "")
    leg = call.legs.get()
    assert (leg.caller_id, leg.caller_account, leg.callee_display_name, leg.reason) == ("", "", "", "")
    assert not Contact.objects.exists()
    assert set(NotificationEvent.objects.values_list("status", flat=True)) == {
        NotificationEvent.Status.APPLIED
    }


@pytest.mark.parametrize("state", ["trying", "showing", "finished", "recorded"])
def test_a_call_past_its_most_legs_ignores_new_legs_and_keeps_applying_its_own(
    notify: Notify, directory: dict[str, Any], monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    """One call key sent with ever new legs made every apply of that call read them all, each slower than the
    last, until the applier served nobody else. Past MAX_LEGS_PER_CALL a new leg is ignored, with the reason
    in the admin; what its existing legs say still applies."""
    from calls import services

    monkeypatch.setattr(services, "MAX_LEGS_PER_CALL", 3)
    inc = {"type": "incoming", "caller": p.client_party(), "callee": p.line_party()}
    for n in range(3):
        notify(p.note(f"{p.BASE}~{n}o", "trying", **inc))
    extra = p.note(f"{p.BASE}~9o", state, duration=5, **inc)
    answer = notify(extra).json()
    event = NotificationEvent.objects.get(pk=answer["id"])
    assert (event.status, event.error) == (
        NotificationEvent.Status.IGNORED,
        "nothing in it to apply (see the applier's log)",
    )
    assert only_call().legs.count() == 3
    for n in range(3):
        notify(p.note(f"{p.BASE}~{n}o", "finished", duration=0, **inc))
    call = only_call()
    assert call.status == Call.Status.MISSED and call.ended_at is not None
    assert NotificationEvent.objects.filter(status=NotificationEvent.Status.APPLIED).count() == 6
