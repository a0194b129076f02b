"""The lists' filters and cursor pagination."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from calls.models import Call, Direction, RoutingDecision
from tests.personas import World

from .tokens import token_client

pytestmark = pytest.mark.django_db


def _ids(response: object) -> set[int]:
    return {row["id"] for row in response.json()["results"]}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "number",
    [
        "+79219462761", "89219462761", "8 (921) 946-27-61", "79219462761", "tel:+7-921-946-27-61",
        # An extension after the number finds the number (it found nothing); digits in any script.
        "+7 921 946 27 61 доб. 12", "+7 921 946 27 61 ext. 12", "+7 921 946 27 61 #12", "＋７ ９２１ ９４６２７６１",
    ],
)  # fmt: skip
def test_calls_by_number_in_any_format(world: World, number: str) -> None:
    api = token_client(world.users["admin"])
    assert _ids(api.get("/api/v1/calls/", {"number": number})) == {world.own_call.pk}
    assert _ids(api.get("/api/v1/contacts/", {"number": number})) == {world.contact.pk}


def test_calls_filters(world: World) -> None:
    api = token_client(world.users["admin"])
    everything = {world.own_call.pk, world.other_call.pk, world.outsider_call.pk}
    Call.objects.filter(pk=world.other_call.pk).update(
        direction=Direction.OUTGOING,
        status=Call.Status.NOT_ANSWERED,
        started_at=timezone.now() - timedelta(days=3),
    )
    assert _ids(api.get("/api/v1/calls/", {"direction": "outgoing"})) == {world.other_call.pk}
    assert _ids(api.get("/api/v1/calls/", {"status": ["answered"]})) == everything - {world.other_call.pk}
    assert _ids(api.get("/api/v1/calls/", {"status": ["answered", "not_answered"]})) == everything
    assert _ids(api.get("/api/v1/calls/", {"operator": world.users["outsider"].pk})) == {
        world.outsider_call.pk
    }
    assert _ids(api.get("/api/v1/calls/", {"contact": world.managed_contact.pk})) == {world.other_call.pk}
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert _ids(api.get("/api/v1/calls/", {"started_after": since})) == everything - {world.other_call.pk}
    assert _ids(api.get("/api/v1/calls/", {"started_before": since})) == {world.other_call.pk}
    assert api.get("/api/v1/calls/", {"status": "nonsense"}).status_code == 400
    assert api.get("/api/v1/calls/", {"number": "abc"}).json()["results"] == []


def test_routing_decisions_are_nested(world: World) -> None:
    call = world.own_call
    leg = call.legs.get()
    now = timezone.now()
    RoutingDecision.objects.create(
        call=call,
        leg=leg,
        decision=RoutingDecision.Decision.RELEASE,
        reason=RoutingDecision.Reason.NO_MANAGER,
        received_at=now,
        decided_at=now,
    )
    data = token_client(world.users["operator"]).get(f"/api/v1/calls/{call.pk}/").json()
    assert data["routing_decisions"][0]["decision"] == "release"
    assert data["routing_decisions"][0]["summary"]
    assert data["legs"][0]["leg_id"] == leg.leg_id


def test_cursor_pagination_walks_every_row_once(world: World) -> None:
    api = token_client(world.users["admin"])
    seen: list[int] = []
    url: str | None = "/api/v1/calls/?page_size=1"
    while url:
        page = api.get(url).json()
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert sorted(seen) == sorted({world.own_call.pk, world.other_call.pk, world.outsider_call.pk})
    assert seen == sorted(seen, reverse=True)


def test_contact_errors_are_words(world: World) -> None:
    api = token_client(world.users["operator"])
    empty = api.post("/api/v1/contacts/", {}, format="json")
    assert empty.status_code == 400 and empty.json()["non_field_errors"]
    taken = api.post("/api/v1/contacts/", {"name": "Y", "numbers": ["89219462761"]}, format="json")
    assert (taken.status_code == 400 and "+79219462761" in " ".join(taken.json()["numbers"])) or taken.json()[
        "numbers"
    ]
    sip = api.post("/api/v1/contacts/", {"numbers": ["883140000000001"]}, format="json")
    assert sip.status_code == 400
    wrong_type = api.post("/api/v1/contacts/", {"numbers": "not a list"}, format="json")
    assert wrong_type.status_code == 400


def test_a_number_of_another_teams_contact_is_refused_without_naming_it(world: World) -> None:
    from tests.personas import set_visibility

    set_visibility("team")
    api = token_client(world.users["operator"])
    response = api.post("/api/v1/contacts/", {"name": "Z", "numbers": ["+74957001122"]}, format="json")
    assert response.status_code == 400
    text = " ".join(response.json()["numbers"])
    assert "Сергей Орлов" not in text and "Orlov" not in text


def test_dial_refusals_in_words(world: World) -> None:
    api = token_client(world.users["operator"])
    bad = api.post("/api/v1/calls/dial/", {"number": "abc"}, format="json")
    assert bad.status_code == 400 and bad.json()["ok"] is False and bad.json()["error"]
    missing = api.post("/api/v1/calls/dial/", {}, format="json")
    assert missing.status_code == 400


def test_wrap_up_errors_are_words(world: World) -> None:
    api = token_client(world.users["operator"])
    url = f"/api/v1/calls/{world.own_call.pk}/wrap-up/"
    assert api.post(url, {"result": 999999}, format="json").json()["result"]
    nothing = api.post(url, {}, format="json")
    assert nothing.status_code == 400 and nothing.json()["result"]
    someone_else = api.post(
        url,
        {
            "comment": "x",
            "follow_up_at": "2030-01-01T10:00:00Z",
            "follow_up_for": world.users["outsider"].pk,
            "follow_up_note": "n",
        },
        format="json",
    )
    from tests.personas import set_visibility

    assert someone_else.status_code == 200  # "all" mode: anyone may be given a task
    set_visibility("team")
    refused = api.post(
        url,
        {
            "comment": "x",
            "follow_up_at": "2030-01-01T10:00:00Z",
            "follow_up_for": world.users["outsider"].pk,
            "follow_up_note": "n",
        },
        format="json",
    )
    assert refused.status_code == 400 and refused.json()["follow_up_for"]


@pytest.mark.parametrize(
    "answer", [{"status": 500, "body": "oops"}, {"status": 429, "body": ""}, {"status": 401, "body": ""}]
)
def test_dial_answers_mtts_errors_as_the_page_does(
    world: World, _api_state: Any, answer: dict[str, Any]
) -> None:
    from django.test import Client

    _api_state.replace("POST", "http://mtt.test/makeCall", **answer)
    page = Client()
    page.force_login(world.users["operator"])
    on_page = page.post("/calls/dial/", {"number": "+79031234567"})
    # Another operator (one click per user and number: the second would get the first's answer).
    by_api = token_client(world.users["manager"]).post(
        "/api/v1/calls/dial/", {"number": "+79031234567"}, format="json"
    )
    assert on_page.status_code >= 400
    assert (by_api.status_code, by_api.json()["code"]) == (on_page.status_code, on_page.json()["code"])
    assert by_api.json()["error"] == on_page.json()["error"]


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


LISTS = ["calls", "contacts", "recordings", "callbacks", "follow-ups", "call-results"]
# Cursors DRF decodes but whose position is not an id (the probe's, and the class they stand for): every
# one is DRF's own "invalid cursor" 404, like a cursor that is not base64 at all.
BAD_CURSORS = [
    "abc",
    "cD14",  # p=x
    "cD0lMDA=",  # p=%00
    "cz0xJnA9MjAyNi0wMS0wMQ==",  # s=1&p=2026-01-01
    "cD05OTk5LTEyLTMx",  # p=9999-12-31
    "cj0xJnA9eA==",  # r=1&p=x
    _cursor("p=1.5"),
    _cursor("p=-"),
    _cursor("p="),
    _cursor("p=0x10"),
    _cursor("p=99999999999999999999999"),  # past a bigint
    _cursor("o=1&p=abc"),
    _cursor("o=x"),
    _cursor("r=x"),
]


@pytest.mark.parametrize("endpoint", LISTS)
@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_a_tampered_cursor_is_the_invalid_cursor_answer(world: World, endpoint: str, cursor: str) -> None:
    api = token_client(world.users["admin"])
    response = api.get(f"/api/v1/{endpoint}/", {"cursor": cursor})
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor"}


def test_a_cursor_with_a_plain_id_still_pages(world: World) -> None:
    api = token_client(world.users["admin"])
    newest = max(world.own_call.pk, world.other_call.pk, world.outsider_call.pk)
    page = api.get("/api/v1/calls/", {"cursor": _cursor(f"p={newest}")})
    assert page.status_code == 200
    assert newest not in _ids(page)
    assert _ids(page)


# The probe's (year 1, year 9999: a 500 as the query turned them into UTC) and the class they stand for.
BAD_MOMENTS = [
    "0001-01-01T00:00:00",
    "0001-01-01",
    "0001-01-01T00:00",
    "9999-12-31T23:59",
    "9999-12-31",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "1969-12-31T23:59:59",
    "2101-01-01T00:00:00",
]


@pytest.mark.parametrize("moment", BAD_MOMENTS)
@pytest.mark.parametrize(
    ("endpoint", "name"),
    [("calls", "started_after"), ("calls", "started_before"), ("follow-ups", "due_before")],
)
def test_a_time_at_the_ends_of_the_calendar_is_a_field_error(
    world: World, endpoint: str, name: str, moment: str
) -> None:
    response = token_client(world.users["admin"]).get(f"/api/v1/{endpoint}/", {name: moment})
    assert response.status_code == 400
    assert response.json() == {name: ["Enter a date from 1970-01-01 to 2100-12-31."]}


def test_a_time_at_the_ends_of_the_range_filters(world: World) -> None:
    api = token_client(world.users["admin"])
    everything = {world.own_call.pk, world.other_call.pk, world.outsider_call.pk}
    assert _ids(api.get("/api/v1/calls/", {"started_after": "1970-01-01T00:00"})) == everything
    assert _ids(api.get("/api/v1/calls/", {"started_before": "2100-12-31T23:59:59"})) == everything
    assert api.get("/api/v1/follow-ups/", {"due_before": "2100-12-31"}).status_code == 200
    assert api.get("/api/v1/calls/", {"started_after": "2026-02-30"}).json() == {
        "started_after": ["Enter a valid date/time."]
    }


@pytest.mark.parametrize(
    ("after", "before"), [("2026-12-31", "2026-01-01"), ("2026-06-01T10:00", "2026-06-01T10:00")]
)
def test_a_period_that_ends_before_it_starts_is_a_field_error(world: World, after: str, before: str) -> None:
    # It answered an empty list, read as "no calls in that period"; the call log's page says it in words.
    api = token_client(world.users["admin"])
    response = api.get("/api/v1/calls/", {"started_after": after, "started_before": before})
    assert response.status_code == 400
    assert response.json() == {"started_before": ["started_before must be later than started_after."]}


def test_a_period_in_order_filters(world: World) -> None:
    api = token_client(world.users["admin"])
    everything = {world.own_call.pk, world.other_call.pk, world.outsider_call.pk}
    period = {"started_after": "1970-01-01T00:00", "started_before": "2100-12-31T23:59:59"}
    assert _ids(api.get("/api/v1/calls/", period)) == everything


@pytest.mark.parametrize("endpoint", ["/api/v1/callbacks/", "/api/v1/follow-ups/"])
@pytest.mark.parametrize("value", ["maybe", "yes", "on", "2", "truee", "unknown", "null"])
def test_a_yes_no_filter_with_another_value_is_a_field_error(world: World, endpoint: str, value: str) -> None:
    # `open=maybe` was read as "not given": the whole list came back, open and closed tasks alike.
    api = token_client(world.users["admin"])
    response = api.get(endpoint, {"open": value})
    assert response.status_code == 400
    assert response.json() == {"open": ["Enter true or false."]}


@pytest.mark.parametrize(
    ("value", "listed"),
    [("true", True), ("1", True), ("TRUE", True), ("false", False), ("0", False), ("", True)],
)
def test_a_yes_no_filter_reads_true_and_false(world: World, value: str, listed: bool) -> None:
    api = token_client(world.users["admin"])
    response = api.get("/api/v1/callbacks/", {"open": value})
    assert response.status_code == 200
    assert (world.callback.pk in _ids(response)) is listed
