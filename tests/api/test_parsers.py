"""The API's JSON parser (api/parsers.py): a body nested too deeply for Python's parser is a 400 in words."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation

from contacts.models import Contact
from tests.personas import World

from .tokens import token_client

pytestmark = pytest.mark.django_db


def nested(depth: int, opening: str = "[", closing: str = "]") -> str:
    return '{"name": ' + opening * depth + closing * depth + "}"


def _writes(world: World) -> list[tuple[str, str]]:
    return [
        ("post", "/api/v1/contacts/"),
        ("post", "/api/v1/calls/dial/"),
        ("patch", f"/api/v1/contacts/{world.contact.pk}/"),
        ("post", f"/api/v1/calls/{world.own_call.pk}/wrap-up/"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        nested(2000),
        nested(100_000),
        nested(5000, '{"a": ', "}"),
        '{"comment": "x", "follow_up_note": ' + "[" * 3000 + "]" * 3000 + "}",
        "[" * 3000,  # deep and unfinished
    ],
    ids=["2000-lists", "100000-lists", "5000-objects", "other-field", "unclosed"],
)
def test_a_body_nested_too_deeply_is_a_400(world: World, body: str) -> None:
    api = token_client(world.users["admin"])
    for method, url in _writes(world):
        response = getattr(api, method)(url, body, content_type="application/json")
        assert response.status_code == 400, (method, url)
        assert response.json() == {"detail": "The JSON body is nested too deeply."}, (method, url)


def test_the_message_is_in_russian_by_default(world: World, settings: Any) -> None:
    settings.LANGUAGE_CODE = "ru"
    api = token_client(world.users["admin"])
    with translation.override("ru"):
        response = api.post("/api/v1/contacts/", nested(2000), content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "Слишком глубокая вложенность JSON."}


def test_a_shallow_nesting_is_an_ordinary_field_error(world: World) -> None:
    api = token_client(world.users["admin"])
    response = api.post("/api/v1/contacts/", nested(50), content_type="application/json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_a_key_twice_changes_nothing(world: World) -> None:
    # Python's parser kept the last "numbers" (the empty list) and the contact lost its number.
    api = token_client(world.users["admin"])
    body = '{"numbers": ["+7 903 111-22-33"], "name": "Новое имя", "numbers": []}'
    for method, url in _writes(world):
        response = getattr(api, method)(url, body, content_type="application/json")
        assert response.status_code == 400, (method, url)
        assert response.json() == {
            "detail": "The key “numbers” appears twice in one JSON object: send each field once."
        }, (method, url)
    world.contact.refresh_from_db()
    assert world.contact.name == "Ольга Смирнова"
    assert list(world.contact.numbers.values_list("e164", flat=True)) == ["+79219462761"]


def test_the_same_key_in_two_objects_is_fine(world: World) -> None:
    api = token_client(world.users["admin"])
    body = '{"name": "Новый", "numbers": ["+7 903 111-22-33"], "extra": {"name": 1}}'
    response = api.post("/api/v1/contacts/", body, content_type="application/json")
    assert response.status_code != 500 and "appears twice" not in response.content.decode()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"name": ', "The request body is not valid JSON (line 1, column 10)."),
        ('{"name": "a"}\n{"name": "b"}', "The request body is not valid JSON (line 2, column 1)."),
        ('{"name": NaN}', "The request body is not valid JSON."),
        ("null", "The request body is null: send a JSON object."),
    ],
)
def test_a_body_that_is_not_a_json_object_says_where(world: World, body: str, detail: str) -> None:
    api = token_client(world.users["admin"])
    response = api.post("/api/v1/contacts/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": detail}


@pytest.mark.parametrize("number", ["1e999", "-1e999", "1.5e400", "NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(
    ("method", "url", "field"),
    [
        ("post", lambda w: "/api/v1/contacts/", "name"),
        ("patch", lambda w: f"/api/v1/contacts/{w.contact.pk}/", "company"),
        ("post", lambda w: f"/api/v1/calls/{w.own_call.pk}/wrap-up/", "comment"),
        ("post", lambda w: "/api/v1/calls/dial/", "number"),
    ],
    ids=["contact", "contact PATCH", "wrap-up", "dial"],
)
def test_a_number_that_is_not_finite_is_refused(
    world: World, method: str, url: Any, field: str, number: str
) -> None:
    # 1e999 is valid JSON that Python reads as infinity: a text field saved the word "inf".
    api = token_client(world.users["admin"])
    contacts, company = Contact.objects.count(), Contact.objects.get(pk=world.contact.pk).company
    response = getattr(api, method)(url(world), f'{{"{field}": {number}}}', content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "The request body is not valid JSON."}
    assert Contact.objects.count() == contacts
    assert Contact.objects.get(pk=world.contact.pk).company == company
    world.own_call.refresh_from_db()
    assert world.own_call.comment == ""
