import pytest
from django.utils import translation

from tests.personas import World

from .tokens import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _russian(settings):
    settings.LANGUAGE_CODE = "ru"
    with translation.override("ru"):
        yield


def test_more(world: World):
    api = token_client(world.users["admin"])
    a = f"/api/v1/recordings/{world.recording.pk}/audio/"
    for rng in [
        "bytes=abc",
        "bytes=5-1",
        "bytes=0-0," * 500 + "0-0",
        "bytes=99999999999-",
        "bytes=-0",
        "bytes=0-99999999999999999999999",
        "items=0-1",
        "bytes=--1",
        "bytes=0-1",
    ]:
        r = api.get(a, HTTP_RANGE=rng)
        print("\nPROBE range", rng[:30], r.status_code, r.get("Content-Range"), r.get("Content-Type"))
    for q in [{"download": "abc"}, {"download": "1"}]:
        r = api.get(a, q)
        print("\nPROBE dl", q, r.status_code, r.get("Content-Disposition"))
    for acc in ["application/xml", "text/html", "*/*", "application/json; q=0", "garbage;;;"]:
        r = api.get("/api/v1/calls/", HTTP_ACCEPT=acc)
        print("\nPROBE accept", acc, r.status_code, r.get("Content-Type"), r.content[:150])
    w = f"/api/v1/calls/{world.own_call.pk}/wrap-up/"
    for body in [
        '{"result": 1.5}',
        '{"result": true}',
        '{"result": "1"}',
        '{"follow_up_for": 999999, "follow_up_note": "x", "follow_up_at": "2026-12-31T10:00"}',
        '{"follow_up_for": "abc"}',
        '{"comment": "' + "x" * 100000 + '"}',
        '{"result": 1' + "0" * 5000 + "}",
        '{"comment": 1e999}',
    ]:
        r = api.post(w, body, content_type="application/json")
        print("\nPROBE wrap", body[:50], r.status_code, r.content[:200].decode(errors="replace"))
    r = api.post(f"/api/v1/callbacks/{world.callback.pk}/take/", '{"x": 1}', content_type="application/json")
    print("\nPROBE take with body", r.status_code, r.content[:200].decode(errors="replace"))
    r = api.post(f"/api/v1/callbacks/{world.callback.pk}/take/", "garbage", content_type="application/json")
    print("\nPROBE take with garbage", r.status_code, r.content[:200].decode(errors="replace"))
    r = api.get("/api/v1/calls/", {"status": ["answered"] * 2000})
    print("\nPROBE many status", r.status_code, r.content[:100])
    r = api.get("/api/v1/calls/", {"number": "8" * 5000})
    print("\nPROBE long digits", r.status_code, r.content[:100])
    r = api.get("/api/v1/contacts/", {"q": "+7" + "9" * 5000})
    print("\nPROBE q long digits", r.status_code, r.content[:100])
    r = api.get("/api/v1/calls/", {"page_size": "99999999999999999999999999"})
    print("\nPROBE huge page_size", r.status_code, len(r.json().get("results", [])))
    r = api.get("/api/v1/calls/", {"page_size": "1", "cursor": "cD0xMjM="})
    print("\nPROBE ok cursor", r.status_code)
    r = api.generic("TRACE", "/api/v1/calls/")
    print("\nPROBE TRACE", r.status_code, r.content[:100].decode(errors="replace"))
    r = api.generic("PROPFIND", "/api/v1/calls/")
    print("\nPROBE PROPFIND", r.status_code, r.content[:100].decode(errors="replace"))
