"""Click-to-call against the sandbox: the makeCall body, one call for a double click, every refusal in words."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from calls.dial import DIAL_MATCH_SECONDS, call_dial
from calls.models import Call, DialRequest
from calls.reconcile import calls_reconcile
from contacts.models import Contact
from contacts.services import contact_add_number
from integrations.applier import applier_drain
from integrations.models import Integration, Workplace
from integrations.mtt import ratelimit
from integrations.mtt.errors import MttRateLimited
from sandbox.testing import RunningSandbox, running_sandbox
from tests.calls.payloads import note
from tests.concurrency import at_once
from tests.mtt_sandbox import connect

WP1 = "883140000000001"  # the sandbox's first workplace
CLIENT_E164 = "+79219462761"


@pytest.fixture(autouse=True)
def _english(settings: Any) -> Iterator[None]:
    # The assertions read the English source strings, whatever the catalogue translates them to.
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    # No scenario after makeCall: the sandbox would POST it to a notify URL nobody serves here.
    with running_sandbox(step_delay=0.01, auto_click_to_call=False) as sb:
        yield sb


@pytest.fixture(autouse=True)
def _own_limiter_keys(settings: Any) -> None:
    # With REDIS_URL the limiter is shared by every test: keep this test's permits to itself.
    settings.MTT_RATE_LIMIT_KEY_PREFIX = f"test-dial:{uuid.uuid4().hex}:"


@pytest.fixture
def mtt(db: Any, sandbox: RunningSandbox, django_capture_on_commit_callbacks: Any) -> Integration:
    return connect(sandbox, django_capture_on_commit_callbacks)


@pytest.fixture
def operator(mtt: Integration) -> Any:
    user = get_user_model().objects.create_user("ivanova", password="x-pass-123", first_name="Мария")
    Workplace.objects.filter(integration=mtt, sip_id=WP1).update(user=user)
    return user


@pytest.fixture
def client_contact(db: Any) -> Contact:
    contact = Contact.objects.create(name="Пётр Клиентов", company="ООО Ромашка")
    contact_add_number(contact=contact, number=CLIENT_E164)
    return contact


def make_calls(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    return [r for r in sandbox.control("GET", "requests") if r["path"] == "/makeCall"]


@pytest.mark.parametrize(
    "typed", ["8 (921) 946-27-61 доб. 123", "+7 921 946-27-61, ext. 123", "89219462761#123"]
)
def test_a_number_with_an_extension_dials_the_number_and_says_to_dial_the_extension(
    sandbox: RunningSandbox, operator: Any, client_contact: Contact, typed: str
) -> None:
    """MTT's makeCall rings a number, not its extension: the operator is told to dial it when the line
    answers, in Russian on the page."""
    client = Client()
    client.force_login(operator)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ru"  # the header's language switch (calls' tests: "en")
    answer = client.post("/calls/dial/", {"number": typed}).json()
    assert answer["ok"] is True and answer["code"] == "placed"
    assert answer["message"].endswith("Когда на линии ответят, наберите добавочный 123.")
    [request] = make_calls(sandbox)
    assert request["json"]["params"]["calleid"] == "79219462761"
    # A second click on it is the same click, with the same words.
    again = client.post("/calls/dial/", {"number": typed}).json()
    assert again["message"] == answer["message"]
    assert len(make_calls(sandbox)) == 1


def test_a_number_without_an_extension_says_nothing_of_one(
    sandbox: RunningSandbox, operator: Any, client_contact: Contact
) -> None:
    assert "extension" not in call_dial(user=operator, number="8 (921) 946-27-61").message


def test_a_click_rings_the_operator_with_the_client_number_in_dialling_format(
    sandbox: RunningSandbox, operator: Any, client_contact: Contact
) -> None:
    result = call_dial(user=operator, number="8 (921) 946-27-61")

    assert result.ok and result.status == 200 and result.code == "placed"
    assert result.message == "Your phone is ringing — pick up to call Пётр Клиентов"
    [request] = make_calls(sandbox)
    assert request["json"] == {"params": {"callerId": WP1, "calleid": "79219462761"}}
    assert request["status"] == 200
    # No call row for the click itself: the call's notifications make it (and link it to the click).
    assert not Call.objects.exists()
    click = DialRequest.objects.get()
    assert click.status == DialRequest.Status.PLACED and click.call is None
    assert click.mtt_call_id == sandbox.state.calls[0]["call_id"]
    assert (click.user, click.number, click.dialled) == (operator, CLIENT_E164, "79219462761")


def test_a_second_click_within_the_window_places_no_second_call(
    sandbox: RunningSandbox, operator: Any, client_contact: Contact
) -> None:
    first = call_dial(user=operator, number=CLIENT_E164)
    second = call_dial(user=operator, number="79219462761")  # the same number in another format

    assert len(make_calls(sandbox)) == 1
    assert second.ok and second.duplicate
    assert second.message == first.message
    assert DialRequest.objects.count() == 1


def test_a_click_after_the_window_places_a_new_call(
    sandbox: RunningSandbox, operator: Any, client_contact: Contact, settings: Any
) -> None:
    settings.CLICK_TO_CALL_DEDUPE_SECONDS = 0
    call_dial(user=operator, number=CLIENT_E164)
    call_dial(user=operator, number=CLIENT_E164)
    assert len(make_calls(sandbox)) == 2


def test_other_dialling_formats(
    sandbox: RunningSandbox, operator: Any, client_contact: Contact, settings: Any
) -> None:
    settings.CLICK_TO_CALL_DEDUPE_SECONDS = 0
    settings.CLICK_TO_CALL_NUMBER_FORMAT = "trunk8"
    call_dial(user=operator, number=CLIENT_E164)
    settings.CLICK_TO_CALL_NUMBER_FORMAT = "e164"
    call_dial(user=operator, number=CLIENT_E164)
    assert [r["json"]["params"]["calleid"] for r in make_calls(sandbox)] == ["89219462761", CLIENT_E164]


@pytest.mark.parametrize(
    ("typed", "style", "calleid"),
    [
        ("8 (921) 946-27-61", "digits", "79219462761"),
        ("8 (921) 946-27-61", "trunk8", "89219462761"),
        ("8 (921) 946-27-61", "e164", "+79219462761"),
        ("8 727 222 33 44", "trunk8", "87272223344"),  # Kazakhstan: the same +7 zone, dialled with 8
        ("8 10 375 29 123-45-67", "digits", "375291234567"),
        ("8 10 375 29 123-45-67", "e164", "+375291234567"),
        # A foreign number dialled the Russian way: 8~10 first. It went bare, "375291234567", a number at
        # home to a PBX dialling with the trunk 8.
        ("+375 29 123-45-67", "trunk8", "810375291234567"),
        ("00 44 20 7946 0958", "trunk8", "810442079460958"),
        ("+1 (212) 555-0123", "trunk8", "81012125550123"),
    ],
)
def test_what_makecall_gets_for_a_number_in_each_dialling_format(
    sandbox: RunningSandbox, operator: Any, settings: Any, typed: str, style: str, calleid: str
) -> None:
    settings.CLICK_TO_CALL_NUMBER_FORMAT = style
    result = call_dial(user=operator, number=typed)
    assert result.ok, result.message
    assert [r["json"]["params"]["calleid"] for r in make_calls(sandbox)] == [calleid]


CALLER = {"accountId": WP1, "displayId": "74996497803", "id": "74996497803", "forwarderList": []}
CALLEE = {"displayId": "89219462761", "id": "89219462761", "forwarderList": []}  # guide §6.4: an 8… form


def apply_outgoing(
    mtt: Integration, client: Client, capture: Any, call_id: str, states: tuple[str, ...]
) -> None:
    for state in states:
        body = note(call_id, state, type="outgoing", caller=CALLER, callee=CALLEE, tag="sdfеx-1")
        response = client.post(mtt.notify_path, json.dumps(body), content_type="application/json")
        assert response.status_code == 200
    with capture(execute=True):
        applier_drain()


@pytest.mark.parametrize("same_ids", [True, False], ids=["makeCall id is the Call-ID", "ids differ"])
def test_the_calls_notifications_are_linked_to_the_click(
    same_ids: bool,
    sandbox: RunningSandbox,
    operator: Any,
    client_contact: Contact,
    mtt: Integration,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Issue 17: the guide never says makeCall's id is the Call-ID of the call's notifications. By the id
    when it is, else by what they carry: the operator's workplace and the dialled number, just after."""
    call_dial(user=operator, number=CLIENT_E164)
    click = DialRequest.objects.get()
    call_id = click.mtt_call_id if same_ids else "SDfe2n901-b510751695c9e53584301f0c0e8d98c9200@127.0.0.1"
    apply_outgoing(
        mtt, client, django_capture_on_commit_callbacks, call_id, ("trying", "showing", "connected")
    )
    call = Call.objects.get()
    assert call.status == Call.Status.IN_PROGRESS
    assert call.initiated_by == operator and call.operator == operator
    assert call.contact == client_contact
    click.refresh_from_db()
    assert click.call == call


def test_a_call_before_makecalls_answer_is_still_linked(
    operator: Any,
    mtt: Integration,
    client_contact: Contact,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The PBX's first notification may be applied before makeCall's answer is (the click still pending);
    the answer, when it comes, keeps the link."""
    click = DialRequest.objects.create(
        user=operator,
        number=CLIENT_E164,
        dialled="79219462761",
        workplace=Workplace.objects.get(user=operator),
    )
    apply_outgoing(mtt, client, django_capture_on_commit_callbacks, "late-answer@10.0.0.1", ("trying",))
    click.refresh_from_db()
    assert click.call == Call.objects.get() and click.call.initiated_by == operator
    click.status, click.mtt_call_id = DialRequest.Status.PLACED, "7NKe6!8fa1FMSlc6ypZdb1GSV6ZN@10.133.51.137"
    click.save(update_fields=["status", "mtt_call_id"])  # as calls.dial._finish saves the answer
    click.refresh_from_db()
    assert click.call is not None


def test_a_later_call_to_the_same_number_is_not_taken_for_an_old_click(
    operator: Any,
    mtt: Integration,
    client_contact: Contact,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    old = timezone.now() - timedelta(seconds=DIAL_MATCH_SECONDS + 5)
    DialRequest.objects.create(
        user=operator,
        number=CLIENT_E164,
        workplace=Workplace.objects.get(user=operator),
        status=DialRequest.Status.PLACED,
        created_at=old,
    )
    apply_outgoing(mtt, client, django_capture_on_commit_callbacks, "dialled-by-hand@10.0.0.1", ("trying",))
    assert Call.objects.get().initiated_by is None
    assert DialRequest.objects.get().call is None


def test_another_operators_call_to_the_number_is_not_taken_for_the_click(
    operator: Any,
    mtt: Integration,
    client_contact: Contact,
    client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    other = Workplace.objects.filter(integration=mtt).exclude(user=operator).first()
    assert other is not None
    DialRequest.objects.create(
        user=operator, number=CLIENT_E164, workplace=other, status=DialRequest.Status.PLACED
    )
    apply_outgoing(mtt, client, django_capture_on_commit_callbacks, "another-desk@10.0.0.1", ("trying",))
    assert Call.objects.get().initiated_by is None


def test_a_click_no_call_answers_expires_and_makes_nobody_busy(
    sandbox: RunningSandbox, operator: Any, client_contact: Contact
) -> None:
    call_dial(user=operator, number=CLIENT_E164)
    assert calls_reconcile().clicks_expired == 0  # still within its time
    later = timezone.now() + timedelta(seconds=DIAL_MATCH_SECONDS + 1)
    assert calls_reconcile(now=later).clicks_expired == 1
    assert DialRequest.objects.get().status == DialRequest.Status.EXPIRED
    assert DialRequest.Status.EXPIRED.label == "No call came"
    assert not Call.objects.exists()  # nothing on the board, nobody busy


# --- Refusals in words ---------------------------------------------------------------------------------


def test_no_workplace(sandbox: RunningSandbox, mtt: Integration, client_contact: Contact) -> None:
    user = get_user_model().objects.create_user("nobody", password="x-pass-123")
    result = call_dial(user=user, number=CLIENT_E164)
    assert (result.ok, result.status, result.code) == (False, 409, "no_workplace")
    assert "workplace" in result.message
    assert make_calls(sandbox) == []


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (Integration.Status.NOT_CONNECTED, "not_connected"),
        (Integration.Status.NEEDS_RECONNECT, "needs_reconnect"),
    ],
)
def test_integration_not_connected_or_needing_reconnect(
    sandbox: RunningSandbox, operator: Any, mtt: Integration, status: str, code: str
) -> None:
    Integration.objects.filter(pk=mtt.pk).update(status=status)
    result = call_dial(user=operator, number=CLIENT_E164)
    assert (result.ok, result.status, result.code) == (False, 503, code)
    assert "Administration → Integrations" in result.message
    assert make_calls(sandbox) == []


def test_refresh_refused_by_mtt_means_reconnect(
    sandbox: RunningSandbox, operator: Any, mtt: Integration
) -> None:
    sandbox.control("POST", "config", {"refuse_refresh": True})
    sandbox.control("POST", "expire-tokens")
    result = call_dial(user=operator, number=CLIENT_E164)
    assert (result.ok, result.status, result.code) == (False, 503, "needs_reconnect")
    assert make_calls(sandbox) == [] or all(r["status"] == 401 for r in make_calls(sandbox))
    mtt.refresh_from_db()
    assert mtt.status == Integration.Status.NEEDS_RECONNECT


@pytest.mark.parametrize("number", ["", "abc", "12", "883140000000002"])
def test_numbers_that_cannot_be_dialled(sandbox: RunningSandbox, operator: Any, number: str) -> None:
    result = call_dial(user=operator, number=number)
    assert (result.ok, result.status, result.code) == (False, 400, "bad_number")
    assert "cannot be dialled" in result.message
    assert make_calls(sandbox) == []


@pytest.mark.parametrize(
    ("number", "words"),
    [
        ("8 (029) 123-45-67", "there is no Russian code 029"),
        ("12-34", "too few digits (4)"),
        ("позвонить Ивану", "digits only"),
        ("+7 921 946 27 61 12", "too many digits (13)"),
        ("\u202e1234\u202c", "too few digits (4)"),
    ],
)
def test_a_number_that_cannot_be_dialled_is_refused_saying_why(
    sandbox: RunningSandbox, operator: Any, number: str, words: str
) -> None:
    # Every such number was "… is not a phone number", with what was typed repeated bidi marks and all.
    result = call_dial(user=operator, number=number)
    assert (result.ok, result.status, result.code) == (False, 400, "bad_number")
    assert words in result.message and "cannot be dialled" in result.message, result.message
    assert "\u202e" not in result.message
    assert make_calls(sandbox) == []


def test_mtt_refusing_is_shown_with_its_words_and_a_retry_is_allowed(
    sandbox: RunningSandbox, operator: Any
) -> None:
    sandbox.control("POST", "faults", {"path": "/makeCall", "status": 403})
    refused = call_dial(user=operator, number=CLIENT_E164)
    assert (refused.ok, refused.status, refused.code) == (False, 422, "refused")
    assert "Injected fault (HTTP 403)" in refused.message  # MTT's own message
    # Refused = certainly not placed: clicking again is a new attempt, not a duplicate.
    again = call_dial(user=operator, number=CLIENT_E164)
    assert again.ok and not again.duplicate
    assert [r["status"] for r in make_calls(sandbox)] == [403, 200]


def test_mtt_rate_limiting(sandbox: RunningSandbox, operator: Any) -> None:
    sandbox.control("POST", "faults", {"path": "/makeCall", "status": 429})
    result = call_dial(user=operator, number=CLIENT_E164)
    assert (result.ok, result.status, result.code) == (False, 429, "rate_limited")
    assert "5 requests per second" in result.message
    assert result.retry_after is not None


def test_our_limiter_having_no_permit(
    sandbox: RunningSandbox, operator: Any, mtt: Integration, settings: Any
) -> None:
    settings.MTT_RATE_LIMIT_MAX_WAIT = 0
    with pytest.raises(MttRateLimited):  # take every permit of this second
        for _ in range(settings.MTT_RATE_LIMIT + 1):
            ratelimit.acquire(mtt.pk, priority=True)
    result = call_dial(user=operator, number=CLIENT_E164)
    assert (result.ok, result.status, result.code) == (False, 429, "rate_limited")
    assert make_calls(sandbox) == []


def test_mtt_unreachable(sandbox: RunningSandbox, operator: Any, mtt: Integration) -> None:
    Integration.objects.filter(pk=mtt.pk).update(api_url="http://127.0.0.1:9")  # nothing listens
    result = call_dial(user=operator, number=CLIENT_E164)
    assert (result.ok, result.status, result.code) == (False, 503, "unreachable")
    assert "cannot be reached" in result.message
    assert DialRequest.objects.get().status == DialRequest.Status.FAILED


def test_mtt_timing_out_may_have_placed_the_call_so_a_second_click_waits(
    sandbox: RunningSandbox, operator: Any, settings: Any
) -> None:
    settings.MTT_READ_TIMEOUT = 0.3
    sandbox.control("POST", "faults", {"path": "/makeCall", "delay": 1.0})
    result = call_dial(user=operator, number=CLIENT_E164)
    assert (result.ok, result.status, result.code) == (False, 503, "unknown")
    assert "may still ring" in result.message
    again = call_dial(user=operator, number=CLIENT_E164)
    assert again.duplicate and again.code == "unknown"
    time.sleep(1.0)  # the sandbox logs the delayed request once it answered it
    assert len(make_calls(sandbox)) == 1


# --- The view ------------------------------------------------------------------------------------------


@pytest.fixture
def view_setup(db: Any, sandbox: RunningSandbox, django_capture_on_commit_callbacks: Any) -> dict[str, Any]:
    mtt = connect(sandbox, django_capture_on_commit_callbacks)
    user = get_user_model().objects.create_user("ivanova", password="x-pass-123", first_name="Мария")
    Workplace.objects.filter(integration=mtt, sip_id=WP1).update(user=user)
    contact = Contact.objects.create(name="Пётр Клиентов")
    contact_add_number(contact=contact, number=CLIENT_E164)
    return {"user": user, "contact": contact, "mtt": mtt}


def test_view_posts_with_csrf_and_answers_json(sandbox: RunningSandbox, view_setup: dict[str, Any]) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(view_setup["user"])
    page = browser.get(reverse("contacts:detail", args=[view_setup["contact"].pk]))
    assert 'data-e164="+79219462761"' in page.content.decode()
    assert "click_to_call.js" in page.content.decode()
    token = browser.cookies["csrftoken"].value
    url = reverse("calls:dial")

    refused = browser.post(url, {"number": CLIENT_E164})
    assert refused.status_code == 403  # no CSRF token

    first = browser.post(url, {"number": CLIENT_E164}, HTTP_X_CSRFTOKEN=token)
    second = browser.post(url, {"number": CLIENT_E164}, HTTP_X_CSRFTOKEN=token)
    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["ok"] is True
    assert first.json()["message"] == "Your phone is ringing — pick up to call Пётр Клиентов"
    assert second.json()["duplicate"] is True and second.json()["message"] == first.json()["message"]
    assert len(make_calls(sandbox)) == 1

    bad = browser.post(url, {"number": "12"}, HTTP_X_CSRFTOKEN=token)
    assert bad.status_code == 400
    assert bad.json()["ok"] is False and "cannot be dialled" in bad.json()["error"]


def test_view_json_body_and_rate_limit_header(sandbox: RunningSandbox, view_setup: dict[str, Any]) -> None:
    browser = Client()
    browser.force_login(view_setup["user"])
    sandbox.control("POST", "faults", {"path": "/makeCall", "status": 429})
    response = browser.post(
        reverse("calls:dial"), json.dumps({"number": CLIENT_E164}), content_type="application/json"
    )
    assert response.status_code == 429
    assert response["Retry-After"] == "1"
    assert response.json() == {"ok": False, "code": "rate_limited", "error": response.json()["error"]}


def test_view_json_body_nested_too_deep_is_a_bad_number(db: Any, client: Client, operator_user: Any) -> None:
    # Found by fuzzing: json.loads raised RecursionError (a 500) on [[[[…
    client.force_login(operator_user)
    response = client.post(reverse("calls:dial"), b"[" * 100_000, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_number"


def test_view_refuses_anonymous_and_get(db: Any, client: Client) -> None:
    url = reverse("calls:dial")
    response = client.post(url, {"number": CLIENT_E164})
    assert response.status_code == 401 and response.json()["ok"] is False
    assert client.get(url).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_clicks_place_one_call(
    postgres_only: None, sandbox: RunningSandbox, django_capture_on_commit_callbacks: Any
) -> None:
    mtt = connect(sandbox, django_capture_on_commit_callbacks)
    user = get_user_model().objects.create_user("ivanova", password="x-pass-123")
    Workplace.objects.filter(integration=mtt, sip_id=WP1).update(user=user)

    results = at_once([lambda: call_dial(user=user, number=CLIENT_E164) for _ in range(4)])

    assert len(make_calls(sandbox)) == 1
    assert all(r.ok for r in results)
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    assert DialRequest.objects.count() == 1


def test_the_contact_admin_page_offers_click_to_call(
    mtt: Integration, client_contact: Contact, admin_user: Any, client: Client
) -> None:
    client.force_login(admin_user)
    page = client.get(reverse("admin:contacts_contact_change", args=[client_contact.pk])).content.decode()
    assert '<span class="phone" data-e164="+79219462761" data-dial="79219462761">' in page
    assert "js/click_to_call.js" in page and 'data-dial-url="/calls/dial/"' in page


@pytest.fixture(autouse=True)
def _english(settings: Any) -> Iterator[None]:
    """These tests read the English wording; the UI's default is Russian."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield
