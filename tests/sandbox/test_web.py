"""The recording download, the demo page and the management command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.management import call_command

from sandbox.app import SandboxApp
from sandbox.testing import Receiver, RunningSandbox

MP3 = Path(__file__).resolve().parents[2] / "sandbox" / "static" / "recording.mp3"


def test_recording_is_served_as_mpeg_audio(sandbox: RunningSandbox) -> None:
    response = requests.get(f"{sandbox.url}/records/2020/12/18/9B58D12A.mp3", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert int(response.headers["Content-Length"]) == MP3.stat().st_size == len(response.content)
    first, second = response.content[0], response.content[1]
    assert first == 0xFF and second & 0xE0 == 0xE0  # an MPEG frame sync, no ID3 header
    assert sandbox.state.record_downloads == ["/records/2020/12/18/9B58D12A.mp3"]


def test_recording_answers_range_requests(sandbox: RunningSandbox) -> None:
    response = requests.get(f"{sandbox.url}/records/a.mp3", headers={"Range": "bytes=100-199"}, timeout=10)
    assert response.status_code == 206
    assert response.content == MP3.read_bytes()[100:200]


def test_only_mp3_records_exist(sandbox: RunningSandbox) -> None:
    assert requests.get(f"{sandbox.url}/records/a.wav", timeout=10).status_code == 404


def test_index_page_shows_scenarios_and_notify_url(sandbox: RunningSandbox) -> None:
    sandbox.control("POST", "config", {"notify_url": "http://crm.test/hook"})
    response = requests.get(f"{sandbox.url}/", timeout=10)
    assert response.status_code == 200
    html = response.text
    for scenario in ("incoming_answered", "incoming_missed", "click_to_call", "recorded"):
        assert f"value='{scenario}'" in html
    assert "Петров Алексей" in html
    assert "http://crm.test/hook" in html


def test_index_page_form_starts_a_scenario(sandbox: RunningSandbox, receiver: Receiver) -> None:
    sandbox.control("POST", "config", {"notify_url": receiver.url})
    form = {
        "scenario": "incoming_missed",
        "caller": "89219462761",
        "external_number": "78005560251",
        "workplace": "883140000000003",
        "call_id": "",
    }
    response = requests.post(f"{sandbox.url}/_sandbox/scenario", data=form, allow_redirects=False, timeout=10)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/?msg=")
    bodies = receiver.wait_for(6)
    assert bodies[0]["result"]["callInfo"]["caller"]["id"] == "89219462761"
    assert requests.get(f"{sandbox.url}{response.headers['Location']}", timeout=10).status_code == 200


def test_unknown_control_method_and_token_get(sandbox: RunningSandbox) -> None:
    assert requests.put(f"{sandbox.url}/_sandbox/faults", timeout=10).status_code == 405
    assert requests.get(f"{sandbox.url}/oauth/token", timeout=10).status_code == 405
    assert requests.get(f"{sandbox.url}/_sandbox/nothing", timeout=10).status_code == 404


def test_management_command_configures_and_serves(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    settings.SANDBOX_CLIENT_ID = "cid"
    settings.SANDBOX_CLIENT_SECRET = "csecret"
    settings.SANDBOX_LOGIN = "portal"
    settings.SANDBOX_PASSWORD = "pw"
    calls: list[tuple[Any, ...]] = []

    def fake_run_simple(host: str, port: int, app: SandboxApp, **kwargs: Any) -> None:
        calls.append((host, port, app, kwargs))

    monkeypatch.setattr("sandbox.management.commands.mtt_sandbox.run_simple", fake_run_simple)
    call_command(
        "mtt_sandbox",
        "--port",
        "8123",
        "--notify-url",
        "http://crm.test/hook",
        "--access-token-lifetime",
        "60",
        "--public-url",
        "https://sandbox.test",
    )
    [(host, port, app, kwargs)] = calls
    assert (host, port) == ("127.0.0.1", 8123)
    assert kwargs == {"threaded": True, "use_reloader": False}
    config = app.config
    assert (config.client_id, config.client_secret, config.login, config.password) == (
        "cid",
        "csecret",
        "portal",
        "pw",
    )
    assert config.notify_url == "http://crm.test/hook"
    assert config.access_token_lifetime == 60
    assert config.base_url == "https://sandbox.test"
    assert app.state.stopping.is_set()  # stopped scenario threads when the server returned


def test_index_page_lists_external_numbers_without_a_type_alone() -> None:
    """A number the directory gives no type read "74996497803 (None)"."""
    from sandbox.config import SandboxConfig
    from sandbox.pages import index_page

    html = index_page(SandboxConfig(), {}).get_data(as_text=True)
    assert "<option value='74996497803'>74996497803</option>" in html
    assert "78005560251 (8800)" in html
    assert "None" not in html
