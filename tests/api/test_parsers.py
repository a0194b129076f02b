"""The API's JSON parser (api/parsers.py): a body nested too deeply for Python's parser is a 400 in words."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation

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
