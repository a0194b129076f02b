"""Issue 18's probe 10: a sandbox reachable from outside (docker compose) asks for a login, hides the
notify URL's token and the portal's password, and sends notifications nowhere but to the CRM that
authorized it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from django.core.management import CommandError, call_command

from sandbox.testing import RunningSandbox, running_sandbox

PASSWORD = "s3cret-control"


@pytest.fixture
def exposed() -> Iterator[RunningSandbox]:
    with running_sandbox(control_password=PASSWORD) as sandbox:
        yield sandbox


def test_the_control_panel_and_api_ask_for_the_login(exposed: RunningSandbox) -> None:
    for method, path in (("GET", "/"), ("GET", "/_sandbox/state"), ("POST", "/_sandbox/scenario")):
        response = requests.request(method, exposed.url + path, json={"scenario": "recorded"}, timeout=10)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        wrong = requests.request(method, exposed.url + path, auth=("demo", "guess"), timeout=10)
        assert wrong.status_code == 401, path
    ok = requests.get(exposed.url + "/", auth=("demo", PASSWORD), timeout=10)
    assert ok.status_code == 200
    # What MTT's own endpoints answer is unchanged: the CRM logs in with OAuth, not with this.
    assert requests.post(exposed.url + "/oauth/token", timeout=10).status_code in (400, 401)


def test_the_page_never_shows_the_notify_token_or_the_portal_password(exposed: RunningSandbox) -> None:
    token = "k3yK3yk3yK3yk3yK3yk3yK3yk3yK3yk3yK3y"
    exposed.state.last_redirect_uri = f"http://crm.example/mtt/{token}/"
    html = requests.get(exposed.url + "/", auth=("demo", PASSWORD), timeout=10).text
    assert token not in html
    assert "http://crm.example/mtt/••••/" in html
    login = requests.get(
        exposed.url + "/oauth/authorize",
        params={"client_id": exposed.config.client_id, "redirect_uri": "http://crm.example/mtt/x/",
                "response_type": "code"},
        timeout=10,
    ).text  # fmt: skip
    assert "Демо: логин" not in login


def test_notifications_go_only_to_the_crm_that_authorized_it(exposed: RunningSandbox) -> None:
    auth = ("demo", PASSWORD)
    for path, payload in (
        ("/_sandbox/scenario", {"scenario": "recorded", "notify_url": "http://169.254.169.254/latest/"}),
        ("/_sandbox/config", {"notify_url": "http://10.0.0.1/x"}),
        ("/_sandbox/config", {"notify_base": "http://10.0.0.1"}),
    ):
        response = requests.post(exposed.url + path, json=payload, auth=auth, timeout=10)
        assert response.status_code == 400, (path, response.text)
        assert "exposed sandbox" in response.text
    assert exposed.state.notifications_snapshot() == []


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_the_sandbox_will_not_listen_beyond_loopback_without_a_login(host: str) -> None:
    with pytest.raises(CommandError, match="SANDBOX_CONTROL_PASSWORD"):
        call_command("mtt_sandbox", "--host", host, "--port", "0", "--control-password", "")
