"""Fuzzing what operators send: the forms and JSON endpoints, as a logged-in user.

Whatever the query or the POST holds: never a 5xx; invalid input is a 400 or a form with errors (the
page, 200) and changes nothing; valid input does what it says. MTT is mocked (``responses``):
click-to-call never reaches the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import responses
from django.test import Client
from django.utils.http import url_has_allowed_host_and_scheme
from hypothesis import example, given
from hypothesis import strategies as st

from calls.models import Call, CallbackTask, DialRequest
from calls.recordings.views import UNSATISFIABLE, parse_range
from contacts.models import Contact, PhoneNumber
from tests.conftest import load_fixture
from tests.fuzz.strategies import any_char, examples, json_dumps_loosely, json_values, phone_text
from tests.personas import MP3, World, build_world, rolled_back

pytestmark = pytest.mark.django_db

# Text as it arrives in a query string or a form: lone surrogates cannot be percent-encoded in UTF-8.
form_text = st.text(st.characters(codec="utf-8"), max_size=40)
dates = st.one_of(
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat),
    st.sampled_from(["0001-01-01", "9999-12-31", "2024-02-30", "31.12.2024", "", "today"]),
    form_text,
)


def utf8(text: str) -> str:
    """``text`` as a form can carry it (a lone surrogate becomes "?")."""
    return text.encode("utf-8", "replace").decode("utf-8")


pages = st.one_of(st.integers(-5, 10**30).map(str), form_text, st.sampled_from(["last", "0", "1e9"]))


def query(**fields: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, str]]:
    """Some of ``fields``, plus perhaps an unknown parameter."""
    known = st.fixed_dictionaries({}, optional=fields)
    return st.tuples(known, st.dictionaries(form_text, form_text, max_size=2)).map(
        lambda kv: {**kv[1], **kv[0]}
    )


@pytest.fixture(autouse=True)
def _mtt(settings: Any) -> Iterator[None]:
    settings.MTT_RATE_LIMIT_KEY_PREFIX = "test-fuzz-forms:"
    settings.MTT_RATE_LIMIT = 100_000
    settings.CLICK_TO_CALL_DEDUPE_SECONDS = 0  # every click is a new call: more paths, no waiting
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post("http://mtt.test/makeCall", json=load_fixture("api/makeCall_response.json"))
        yield


@pytest.fixture
def world(integration: Any) -> World:
    return build_world(integration)


def login(world: World, role: str = "operator") -> Client:
    client = Client()
    client.force_login(world.users[role])
    return client


def ok(response: Any, *allowed: int) -> Any:
    assert response.status_code < 500, response.status_code
    if allowed:
        assert response.status_code in allowed, response.status_code
    # Streamed answers (CSV, recordings) fail while streaming, if at all: read them here.
    response.body = b"".join(response.streaming_content) if response.streaming else response.content
    return response


# --- lists and filters (GET) ------------------------------------------------------------------------------


CALL_FILTERS = query(
    period=st.one_of(st.sampled_from(["today", "7d", "30d", "all", "custom"]), form_text),
    date_from=dates,
    date_to=dates,
    direction=st.one_of(st.sampled_from(["incoming", "outgoing", "unknown"]), form_text),
    status=st.one_of(st.sampled_from(["answered", "missed", "ringing"]), form_text),
    operator=st.one_of(st.integers(-1, 10**20).map(str), form_text),
    line=st.one_of(st.integers(-1, 10**20).map(str), form_text),
    q=st.one_of(phone_text.map(utf8), form_text),
    page=pages,
)


@examples(0.2)
@given(params=CALL_FILTERS)
@example(params={"period": "custom", "date_from": "0001-01-01", "date_to": "0001-01-01"})
@example(params={"period": "custom", "date_from": "9999-12-31", "date_to": "9999-12-31"})
@example(params={"date_to": "9999-12-31"})
@example(params={"q": "\x00"})
def test_the_call_log_and_its_export(world: World, params: dict[str, str]) -> None:
    client = login(world)
    page = ok(client.get("/calls/", params), 200)
    response = ok(client.get("/calls/export.csv", params), 200, 400)
    # A wrong filter is shown on the page, with no rows, and refused by the export in words: never the
    # unfiltered log in its place.
    if page.context["form"].errors:
        assert list(page.context["calls"]) == []
        assert response.status_code == 400 and response["Content-Type"].startswith("text/plain")
    else:
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")


@examples(0.15)
@given(params=query(q=st.one_of(phone_text.map(utf8), form_text), page=pages))
@example(params={"q": "\x00"})
@example(params={"q": "%"})
@example(params={"q": "+7 (921) 946-27-61"})
def test_the_contact_search(world: World, params: dict[str, str]) -> None:
    ok(login(world).get("/contacts/", params), 200)


@examples(0.15)
@given(params=query(number=form_text, name=form_text))
@example(params={"number": "\x00"})
@example(params={"number": "+79219462761"})
def test_the_new_contact_page_prefilled_by_the_screen_pop(world: World, params: dict[str, str]) -> None:
    ok(login(world).get("/contacts/new/", params), 200)


@examples(0.2)
@given(params=query(period=form_text, date_from=dates, date_to=dates, line=form_text))
@example(params={"period": "custom", "date_from": "0001-01-01", "date_to": "0001-01-01"})
@example(params={"period": "custom", "date_from": "9999-12-31", "date_to": "9999-12-31"})
@example(params={"period": "custom", "date_from": "2024-01-01", "date_to": "2023-01-01"})
def test_the_reports_and_their_csv(world: World, params: dict[str, str]) -> None:
    client = login(world, "supervisor")
    ok(client.get("/reports/", params), 200)
    ok(client.get("/reports/operators.csv", params), 200, 400)


@examples(0.1)
@given(params=st.dictionaries(form_text, form_text, max_size=3))
def test_the_json_endpoints_ignore_their_query(world: World, params: dict[str, str]) -> None:
    assert ok(login(world).get("/calls/active.json", params), 200).json()["calls"] is not None
    assert ok(login(world, "supervisor").get("/calls/live.json", params), 200).json()["calls"] is not None
    ok(login(world).get("/calls/callbacks/", params), 200)


# --- contact forms (POST) -------------------------------------------------------------------------------


CONTACT_FORM = query(
    name=form_text,
    company=form_text,
    email=st.one_of(st.emails(), form_text),
    notes=form_text,
    numbers=st.one_of(
        st.lists(
            st.one_of(phone_text, st.sampled_from(["+79219462761", "89031234567", "+78124241500"])),
            max_size=4,
        )
        .map("\n".join)
        .map(utf8),
        form_text,
    ),
    personal_manager=st.one_of(st.integers(-1, 10**20).map(str), form_text),
)


def _contact_state() -> tuple[list[Any], list[Any]]:
    contacts = list(
        Contact.objects.order_by("pk").values_list(
            "pk", "name", "company", "email", "notes", "personal_manager_id"
        )
    )
    numbers = list(PhoneNumber.objects.order_by("pk").values_list("pk", "contact_id", "e164", "raw"))
    return contacts, numbers


def _assert_numbers_consistent() -> None:
    from contacts import phones

    for number in PhoneNumber.objects.all():
        assert number.e164 == (phones.normalize(number.raw) or "")
        assert number.raw_digits == phones.digits_only(number.raw)


@examples(0.2)
@given(data=CONTACT_FORM)
@example(data={"name": "\x00"})
@example(data={"numbers": "+79219462761"})  # another contact's number
@example(data={"numbers": "+79031234567\n89031234567"})  # one number twice
@example(data={"name": "x", "personal_manager": "99999999999999999999"})
def test_creating_a_contact(world: World, data: dict[str, str]) -> None:
    with rolled_back():
        before = _contact_state()
        response = ok(login(world).post("/contacts/new/", data), 200, 302)
        if response.status_code == 200:
            assert _contact_state() == before  # the form with its errors, nothing written
        else:
            assert Contact.objects.count() == len(before[0]) + 1
            _assert_numbers_consistent()


@examples(0.2)
@given(data=CONTACT_FORM)
@example(data={"numbers": "+79219462761"})  # the other contact's number
@example(data={"name": "y", "numbers": ""})  # all numbers removed
def test_editing_a_contact(world: World, data: dict[str, str]) -> None:
    with rolled_back():
        before = _contact_state()
        response = ok(login(world).post(f"/contacts/{world.managed_contact.pk}/edit/", data), 200, 302)
        if response.status_code == 200:
            assert _contact_state() == before
        else:
            assert Contact.objects.count() == len(before[0])
            _assert_numbers_consistent()


@examples(0.1)
@given(
    data=query(
        source=st.one_of(st.integers(-1, 10**20).map(str), form_text),
        target=st.one_of(st.integers(-1, 10**20).map(str), form_text),
    )
)
@example(data={"source": "1", "target": "1"})
@example(data={"source": "1", "target": "2"})
def test_merging_contacts(world: World, data: dict[str, str]) -> None:
    with rolled_back():
        ok(login(world, "supervisor").post("/contacts/merge/", data), 302)


# --- click-to-call, notes, callbacks ---------------------------------------------------------------------


@examples(0.2)
@given(number=phone_text, as_json=st.booleans())
@example(number="+79219462761", as_json=False)
@example(number="8 (903) 123-45-67", as_json=True)
@example(number="\x00", as_json=False)
@example(number="883140000000001", as_json=False)  # a workplace, not a client
def test_click_to_call(world: World, number: str, as_json: bool) -> None:
    client = login(world)
    with rolled_back():
        calls_before = Call.objects.count()
        if as_json:
            response = client.post(
                "/calls/dial/", json_dumps_loosely({"number": number}, True), content_type="application/json"
            )
        else:
            response = client.post("/calls/dial/", {"number": utf8(number)})
        ok(response, 200, 400)
        answer = response.json()
        if response.status_code == 200:
            assert answer["ok"] is True
            request = DialRequest.objects.get()
            assert request.status == DialRequest.Status.PLACED
            assert request.user == world.users["operator"]
            # No call row at the click: the PBX's notifications make it, and it is linked to this click.
            assert Call.objects.count() == calls_before
        else:
            assert answer == {"ok": False, "code": "bad_number", "error": answer["error"]}
            assert not DialRequest.objects.exists()


@examples(0.1)
@given(body=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json_dumps_loosely(v, True))))
@example(body=b"[" * 100_000)
@example(body=b'{"number": ["+79219462761"]}')
def test_click_to_call_with_any_json_body(world: World, body: bytes) -> None:
    with rolled_back():
        ok(login(world).post("/calls/dial/", body, content_type="application/json"), 200, 400)


@examples(0.2)
@given(text=form_text, call=st.sampled_from(["own", "other", "missing"]))
@example(text="\x00", call="own")
@example(text="0\x00", call="own")  # the view drops NUL (PostgreSQL cannot store it)
@example(text="x" * 2001, call="own")
@example(text="  ", call="own")
def test_a_note_on_a_call(world: World, text: str, call: str) -> None:
    pk = {"own": world.own_call.pk, "other": world.other_call.pk, "missing": 10**9}[call]
    with rolled_back():
        before = Contact.objects.get(pk=world.contact.pk).notes
        response = ok(login(world).post(f"/calls/{pk}/note/", {"text": text}), 200, 400, 404)
        notes = Contact.objects.get(pk=world.contact.pk).notes
        if response.status_code == 200:
            assert call == "own"
            assert notes.endswith(text.replace("\x00", "").strip())
        else:
            assert notes == before
            assert response.json()["ok"] is False


@examples(0.1)
@given(pk=st.integers(min_value=0, max_value=2**63 - 1))
@example(pk=1)
def test_taking_a_callback(world: World, pk: int) -> None:
    with rolled_back():
        response = ok(login(world).post(f"/calls/callbacks/{pk}/take/"), 302, 404)
        # A task that does not exist (or that the user may not see) is a 404; one that does, a redirect.
        assert (response.status_code == 302) == CallbackTask.objects.filter(pk=pk).exists()
        taken = CallbackTask.objects.filter(assignee=world.users["operator"]).values_list("pk", flat=True)
        assert list(taken) in ([], [pk])


@examples(0.1)
@given(pk=st.integers(min_value=0, max_value=2**70))
@example(pk=2**63)
def test_any_object_id_in_a_path(world: World, pk: int) -> None:
    # <int:pk> takes any digits: past the database's 64-bit integers too.
    client = login(world, "admin")
    for url in (f"/calls/{pk}/", f"/contacts/{pk}/", f"/contacts/{pk}/edit/", f"/recordings/{pk}/"):
        ok(client.get(url), 200, 302, 404)


# --- recordings -----------------------------------------------------------------------------------------


ranges = st.one_of(
    st.builds(
        lambda a, b: f"bytes={a}-{b}",
        st.one_of(st.just(""), st.integers(0, 3000).map(str)),
        st.one_of(st.just(""), st.integers(0, 3000).map(str)),
    ),
    st.sampled_from(["bytes=0-0,5-9", "bytes=-0", "bytes=--1", "items=0-1", "bytes=1" + "0" * 5000 + "-"]),
    form_text,
)


@given(header=st.one_of(ranges, st.text(any_char, max_size=30)), size=st.integers(0, 5000))
def test_parse_range(header: str, size: int) -> None:
    selected = parse_range(header, size)
    if selected is None or selected == UNSATISFIABLE:
        return
    first, last = selected
    assert 0 <= first <= last < size


@examples(0.2)
@given(header=ranges)
@example(header="bytes=0-")
@example(header="bytes=1024-")
@example(header="bytes=-1")
def test_listening_with_any_range(world: World, header: str) -> None:
    with rolled_back():
        response = ok(
            login(world).get(f"/recordings/{world.recording.pk}/", HTTP_RANGE=header), 200, 206, 416
        )
        if response.status_code in (200, 206):
            content = response.body
            assert len(content) == int(response["Content-Length"])
            if response.status_code == 206:
                span, total = response["Content-Range"].removeprefix("bytes ").split("/")
                first, last = (int(x) for x in span.split("-"))
                assert int(total) == len(MP3) and content == MP3[first : last + 1]
            else:
                assert content == MP3


# --- language and login ----------------------------------------------------------------------------------


@examples(0.1)
@given(data=query(language=st.one_of(st.sampled_from(["ru", "en", "de"]), form_text), next=form_text))
@example(data={"language": "en", "next": "https://evil.example/"})
@example(data={"language": "en", "next": "//evil.example/"})
@example(data={"language": "en", "next": "/\\evil.example"})
def test_choosing_the_language(data: dict[str, str], db: Any) -> None:
    response = ok(Client().post("/i18n/setlang/", data), 302, 204)
    if response.status_code == 302:
        # Never off the site (an open redirect), whatever "next" says.
        assert url_has_allowed_host_and_scheme(response["Location"], allowed_hosts={"testserver"})


@examples(0.04)
@given(data=query(username=form_text, password=form_text))
@example(data={"username": "\x00", "password": "x"})
@example(data={"username": "operator", "password": ""})
def test_logging_in_with_anything(world: World, data: dict[str, str]) -> None:
    with rolled_back():
        client = Client()
        ok(client.post("/accounts/login/", data), 200, 429)
        assert "_auth_user_id" not in client.session  # nobody has a usable password here
