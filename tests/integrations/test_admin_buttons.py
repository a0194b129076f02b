"""Issue 18, probe 6: the integration page's Connect and Sync now act only on a POST with a CSRF token.

Before the fix both were plain links: a cross-site GET (an <img src>, a link in a mail) spent MTT's request
budget on a sync or overwrote a Connect in progress with a new OAuth state.
"""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.test import Client
from django.urls import reverse

from integrations.models import Integration
from integrations.views import OAUTH_SESSION_KEY

pytestmark = pytest.mark.django_db


def _urls(integration: Integration) -> dict[str, str]:
    return {
        "connect": reverse("admin:integrations_integration_connect", args=[integration.pk]),
        "sync": reverse("admin:integrations_integration_sync", args=[integration.pk]),
    }


def test_a_get_on_sync_asks_mtt_nothing(admin_user: Any, integration: Integration) -> None:
    client = Client()
    client.force_login(admin_user)
    # No URL is mocked: any request to MTT would fail the test with a ConnectionError.
    with responses.RequestsMock() as mock:
        response = client.get(_urls(integration)["sync"])
        assert len(mock.calls) == 0
    assert response.status_code == 405
    integration.refresh_from_db()
    assert integration.last_sync_at is None


def test_a_get_on_connect_leaves_a_connect_in_progress_alone(
    admin_user: Any, integration: Integration
) -> None:
    client = Client()
    client.force_login(admin_user)
    started = client.post(_urls(integration)["connect"])
    assert started.status_code == 302
    pending = client.session[OAUTH_SESSION_KEY]

    response = client.get(_urls(integration)["connect"])

    assert response.status_code == 405
    assert client.session[OAUTH_SESSION_KEY] == pending


@pytest.mark.parametrize("action", ["connect", "sync"])
def test_a_post_without_the_csrf_token_is_refused(
    admin_user: Any, integration: Integration, action: str
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    with responses.RequestsMock():
        response = client.post(_urls(integration)[action])
    assert response.status_code == 403
    assert OAUTH_SESSION_KEY not in client.session


def test_the_page_has_buttons_that_post_with_the_token(admin_user: Any, integration: Integration) -> None:
    client = Client()
    client.force_login(admin_user)
    page = client.get(
        reverse("admin:integrations_integration_change", args=[integration.pk])
    ).content.decode()
    urls = _urls(integration)
    for action in ("connect", "sync"):
        form_start = page.index(f'<form id="integration-{action}" method="post" action="{urls[action]}">')
        form = page[form_start : page.index("</form>", form_start)]
        assert 'name="csrfmiddlewaretoken"' in form
        assert f'form="integration-{action}"' in page
        assert f'href="{urls[action]}"' not in page
    # The forms are not nested in the change form: Save stays the form's default button.
    change_form_end = page.index("</form>", page.index('id="integration_form"'))
    assert page.index('id="integration-connect"') > change_form_end
