"""The API's errors are words in the CRM's language (Russian by default): hostile or wrong input of every
kind, a row that does not exist or is not the user's, throttling — never English, never a model's name."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import translation
from rest_framework.test import APIClient

from tests.personas import World, set_visibility

from .tokens import token_client

pytestmark = pytest.mark.django_db

ENGLISH = re.compile(r"\b(the|is|are|not|no|in|this|than|matches|query|expected|must|ensure|valid)\b", re.I)


@pytest.fixture(autouse=True)
def _russian(settings: Any) -> Iterator[None]:
    """The default language of the CRM (tests/api/conftest.py switches the others to English)."""
    settings.LANGUAGE_CODE = "ru"
    with translation.override("ru"):
        yield


def messages_of(body: Any) -> list[str]:
    if isinstance(body, str):
        return [body]
    if isinstance(body, list):
        return [m for item in body for m in messages_of(item)]
    if isinstance(body, dict):
        return [m for key, item in body.items() if key not in ("ok", "code") for m in messages_of(item)]
    return []


def assert_in_russian(response: Any, status: int) -> list[str]:
    assert response.status_code == status, response.content[:300]
    texts = messages_of(response.json())
    assert texts, response.content[:300]
    for text in texts:
        assert re.search("[а-яё]", text, re.I) and not ENGLISH.search(text), text
    return texts


Request = Callable[[APIClient, World], Any]


def _json(method: str, url: Callable[[World], str], body: Any) -> Request:
    raw = body if isinstance(body, str) else json.dumps(body)
    return lambda api, w: getattr(api, method)(url(w), raw, content_type="application/json")


def _contact(w: World) -> str:
    return f"/api/v1/contacts/{w.contact.pk}/"


HOSTILE: dict[str, tuple[Request, int]] = {
    "a lone surrogate in a name": (
        _json("post", lambda w: "/api/v1/contacts/", r'{"name": "a\ud800b"}'),
        400,
    ),
    "a surrogate in a PATCH": (_json("patch", _contact, r'{"company": "\udfff"}'), 400),
    "a surrogate in a number": (
        _json("post", lambda w: "/api/v1/contacts/", r'{"numbers": ["\ud83d"]}'),
        400,
    ),
    "NUL in a name": (_json("post", lambda w: "/api/v1/contacts/", {"name": "a\x00b"}), 400),
    "51 numbers": (
        _json("post", lambda w: "/api/v1/contacts/", {"numbers": [f"+7903555{n:04d}" for n in range(51)]}),
        400,
    ),
    "an object for a name": (_json("post", lambda w: "/api/v1/contacts/", {"name": {"a": 1}}), 400),
    "a list for a comment": (
        _json("post", lambda w: f"/api/v1/calls/{w.own_call.pk}/wrap-up/", {"comment": ["x"]}),
        400,
    ),
    "a body that is not JSON": (_json("post", lambda w: "/api/v1/contacts/", '{"name": '), 400),
    "JSON with something after it": (_json("post", lambda w: "/api/v1/contacts/", '{"name": "a"} b'), 400),
    "NaN in a wrap-up": (
        _json("post", lambda w: f"/api/v1/calls/{w.own_call.pk}/wrap-up/", '{"result": NaN}'),
        400,
    ),
    "a body of null": (_json("post", lambda w: "/api/v1/contacts/", "null"), 400),
    "a PATCH of null": (_json("patch", _contact, "null"), 400),
    "a key twice": (_json("patch", _contact, '{"numbers": ["+79031112233"], "numbers": []}'), 400),
    "a body not in UTF-8": (
        lambda api, w: api.post(
            "/api/v1/contacts/", '{"name": "Ж"}'.encode("cp1251"), content_type="application/json"
        ),
        400,
    ),
    "an unknown field": (_json("post", lambda w: "/api/v1/contacts/", {"name": "x", "phone": "1"}), 400),
    "a period that ends before it starts": (
        lambda api, w: api.get(
            "/api/v1/calls/", {"started_after": "2026-12-31", "started_before": "2026-01-01"}
        ),
        400,
    ),
    "a yes/no filter that is neither": (lambda api, w: api.get("/api/v1/callbacks/", {"open": "maybe"}), 400),
    # The page's 416 is empty text/html; the API's is words in JSON (with the Content-Range).
    "a range past the recording's end": (
        lambda api, w: api.get(
            f"/api/v1/recordings/{w.recording.pk}/audio/", HTTP_RANGE="bytes=99999999999-"
        ),
        416,
    ),
    "a range of no bytes": (
        lambda api, w: api.get(f"/api/v1/recordings/{w.recording.pk}/audio/", HTTP_RANGE="bytes=-0"),
        416,
    ),
    "a contact that does not exist": (lambda api, w: api.get("/api/v1/contacts/999999/"), 404),
    "PATCH of a contact that does not exist": (_json("patch", lambda w: "/api/v1/contacts/999999/", {}), 404),
    "a call that does not exist": (lambda api, w: api.get("/api/v1/calls/999999/"), 404),
    "a recording's audio that does not exist": (
        lambda api, w: api.get("/api/v1/recordings/999999/audio/"),
        404,
    ),
    "a follow-up that does not exist": (lambda api, w: api.post("/api/v1/follow-ups/999999/complete/"), 404),
    "a callback that does not exist": (lambda api, w: api.post("/api/v1/callbacks/999999/take/"), 404),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_errors_are_in_words(world: World, case: str) -> None:
    request, status = HOSTILE[case]
    assert_in_russian(request(token_client(world.users["admin"]), world), status)


# Another team's rows (team mode): the same 404, word for word, as a row that does not exist.
TEAM_A_ROWS: dict[str, Callable[[World], tuple[str, str]]] = {
    "call": lambda w: ("get", f"/api/v1/calls/{w.other_call.pk}/"),
    "contact": lambda w: ("get", f"/api/v1/contacts/{w.managed_contact.pk}/"),
    "contact PATCH": lambda w: ("patch", f"/api/v1/contacts/{w.managed_contact.pk}/"),
    "recording": lambda w: ("get", f"/api/v1/recordings/{w.recording.pk}/"),
    "recording's audio": lambda w: ("get", f"/api/v1/recordings/{w.recording.pk}/audio/"),
    "callback": lambda w: ("get", f"/api/v1/callbacks/{w.callback.pk}/"),
    "taking a callback": lambda w: ("post", f"/api/v1/callbacks/{w.callback.pk}/take/"),
    "wrap-up": lambda w: ("post", f"/api/v1/calls/{w.other_call.pk}/wrap-up/"),
}


@pytest.mark.parametrize("row", sorted(TEAM_A_ROWS))
def test_another_teams_row_answers_as_a_missing_one(world: World, row: str) -> None:
    set_visibility("team")
    method, url = TEAM_A_ROWS[row](world)
    api = token_client(world.users["outsider"])

    def ask(url: str) -> Any:
        if method == "get":
            return api.get(url)
        return getattr(api, method)(
            url, json.dumps({"name": "x", "comment": "x"}), content_type="application/json"
        )

    hidden, missing = ask(url), ask(re.sub(r"/\d+/", "/999999/", url))
    assert assert_in_russian(hidden, 404) == assert_in_russian(missing, 404)


def test_throttling_is_in_words(world: World, settings: Any) -> None:
    settings.API_THROTTLE_RATE = "2/min"
    api = token_client(world.users["operator"])
    for _ in range(2):
        assert api.get("/api/v1/calls/").status_code == 200
    response = api.get("/api/v1/calls/")
    (text,) = assert_in_russian(response, 429)
    wait = int(response["Retry-After"])
    assert 0 < wait <= 60 and str(wait) in text


WRITES: dict[str, Callable[[World], str]] = {
    "new contact": lambda w: "/api/v1/contacts/",
    "contact PATCH": _contact,
    "wrap-up": lambda w: f"/api/v1/calls/{w.own_call.pk}/wrap-up/",
    "click-to-call": lambda w: "/api/v1/calls/dial/",
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_body_too_large_is_a_413_in_words(world: World, settings: Any, write: str) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    api = token_client(world.users["admin"])
    method = "patch" if "PATCH" in write else "post"
    for body in (json.dumps({"name": "x" * 20_000, "comment": "x"}), "[" * 20_000):
        response = getattr(api, method)(WRITES[write](world), body, content_type="application/json")
        assert response["Content-Type"] == "application/json"
        assert_in_russian(response, 413)
    # Just under the limit: an ordinary answer.
    small = json.dumps({"name": "x" * 100, "comment": "x", "number": "x"})
    assert (
        getattr(api, method)(WRITES[write](world), small, content_type="application/json").status_code < 413
    )


@pytest.mark.parametrize("accept", ["application/json", "*/*"])
def test_an_unsatisfiable_range_keeps_its_content_range(world: World, accept: str) -> None:
    api = token_client(world.users["admin"])
    url = f"/api/v1/recordings/{world.recording.pk}/audio/"
    response = api.get(url, HTTP_RANGE="bytes=99999999999-", HTTP_ACCEPT=accept)
    assert response.status_code == 416 and response["Content-Type"] == "application/json"
    assert response["Content-Range"] == f"bytes */{world.recording.size}"
    assert api.get(url, HTTP_RANGE="bytes=0-1").status_code == 206
