"""403, 404 and 500 in the site's layout, in Russian, saying what to do (issue 16); the 500 page renders
with no request context and no database."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.db import connections
from django.test import Client
from django.views import defaults

from tests.personas import World, build_world, set_visibility

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(integration: Any) -> World:
    return build_world(integration)


def test_403_is_in_the_layout_and_says_what_to_do(world: World) -> None:
    client = Client()
    client.force_login(world.users["operator"])
    response = client.get("/reports/")
    assert response.status_code == 403
    page = response.content.decode()
    assert 'class="topbar"' in page and "Звонки" in page  # the menu
    assert "Доступ запрещён" in page and "администратор" in page
    assert "403 Forbidden" not in page


def test_404_is_in_the_layout_and_says_what_to_do(world: World) -> None:
    client = Client()
    client.force_login(world.users["operator"])
    response = client.get("/calls/999999/")
    assert response.status_code == 404
    page = response.content.decode()
    assert 'class="topbar"' in page and "Страница не найдена" in page and "/contacts/" in page


def test_404_of_another_teams_call_looks_the_same(world: World) -> None:
    set_visibility("team")
    client = Client()
    client.force_login(world.users["outsider"])
    assert "Страница не найдена" in client.get(f"/calls/{world.own_call.pk}/").content.decode()


def test_500_renders_without_a_request_and_without_the_database(rf: Any) -> None:
    request = rf.get("/")

    def no_database(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the 500 page touched the database")

    with mock.patch.object(connections["default"], "cursor", no_database):
        response = defaults.server_error(request)
    assert response.status_code == 500
    page = response.content.decode()
    assert "Что-то пошло не так" in page and 'class="topbar"' in page and "администратор" in page


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/contacts/new/", 413, "Тело запроса больше"),
        ("/calls/{call}/note/", 413, "Тело запроса больше"),
        ("/accounts/login/", 413, "Тело запроса больше"),
        ("/contacts/new/?fields", 400, "слишком много полей"),
    ],
)
def test_a_request_too_large_is_answered_in_words(
    world: World, settings: Any, url: str, status: int, words: str
) -> None:
    """A request Django refuses before any view (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields):
    a page in Russian, not Django's English "Bad Request (400)"."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
    client = Client()
    client.force_login(world.users["operator"])
    if url.endswith("?fields"):
        data = {f"f{n}": "x" for n in range(200)}
    else:
        data = {"name": "x" * 20_000, "text": "x" * 20_000, "username": "x" * 20_000}
    response = client.post(url.format(call=world.own_call.pk), data)
    assert response.status_code == status
    page = response.content.decode()
    assert words in page and "Bad Request" not in page and 'lang="ru"' in page


def test_a_host_not_allowed_is_answered_in_words(world: World) -> None:
    response = Client().get("/contacts/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    page = response.content.decode()
    assert "Неверный запрос" in page and "Bad Request" not in page


@pytest.mark.parametrize(
    "path", ["/calls/dial/", "/contacts/merge/", "/calls/callbacks/1/take/", "/tasks/1/done/"]
)
def test_a_forms_target_opened_as_a_page_says_so_in_the_layout(world: World, path: str) -> None:
    client = Client()
    client.force_login(world.users["operator"])
    response = client.get(path)
    assert response.status_code == 405 and "POST" in response["Allow"]
    page = response.content.decode()
    assert 'class="topbar"' in page and "Эта страница открывается кнопкой" in page and "Рабочее место" in page


def test_the_api_and_scripts_keep_their_405(world: World) -> None:
    client = Client()
    client.force_login(world.users["operator"])
    api = client.get("/api/v1/calls/dial/")
    assert api.status_code == 405 and api["Content-Type"].startswith("application/json")
    script = client.get("/calls/dial/", HTTP_ACCEPT="application/json")
    assert script.status_code == 405 and b"topbar" not in script.content
