"""NOTIFY_ALLOWED_NETWORKS: only MTT's networks may POST notifications."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client

from integrations.models import Integration, NotificationEvent
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db

BODY = json.dumps(load_fixture("notifications/01_incoming_trying.json"), ensure_ascii=False)


def post(client: Client, path: str, remote: str, forwarded: str | None = None) -> Any:
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.post(path, data=BODY, content_type="application/json", **extra)


@pytest.fixture
def allow_list(settings: Any) -> Any:
    settings.NOTIFY_ALLOWED_NETWORKS = ["203.0.113.0/24", "2001:db8:40::/48"]
    settings.TRUSTED_PROXIES = []
    return settings


def test_empty_allow_list_accepts_anyone(client: Client, integration: Integration, settings: Any) -> None:
    settings.NOTIFY_ALLOWED_NETWORKS = []
    assert post(client, integration.notify_path, "198.51.100.9").status_code == 200


@pytest.mark.parametrize("remote", ["203.0.113.7", "2001:db8:40::1", "::ffff:203.0.113.200"])
def test_addresses_in_the_list_are_accepted(
    client: Client, integration: Integration, allow_list: Any, remote: str
) -> None:
    response = post(client, integration.notify_path, remote)
    assert response.status_code == 200, response.content
    assert NotificationEvent.objects.count() == 1


@pytest.mark.parametrize("remote", ["198.51.100.9", "2001:db8:41::1", "127.0.0.1"])
def test_others_get_403_a_log_line_and_nothing_stored(
    client: Client,
    integration: Integration,
    allow_list: Any,
    remote: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        response = post(client, integration.notify_path, remote)
    assert response.status_code == 403
    assert NotificationEvent.objects.count() == 0
    ours = [r.getMessage() for r in caplog.records if r.name == "integrations.views"]
    assert len(ours) == 1
    assert remote in ours[0]
    # (Django's own "Forbidden: <path>" line is masked by mttcrm.logs' formatters.)
    assert integration.notify_token not in ours[0]


def test_refused_before_the_token_is_looked_at(
    client: Client, integration: Integration, allow_list: Any
) -> None:
    # A stranger learns nothing: a real and a made-up token answer the same.
    assert post(client, "/mtt/made-up/", "198.51.100.9").status_code == 403
    assert post(client, integration.notify_path, "198.51.100.9").status_code == 403
    # From an allowed address an unknown token is still 404.
    assert post(client, "/mtt/made-up/", "203.0.113.7").status_code == 404


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    client: Client, integration: Integration, allow_list: Any
) -> None:
    assert post(client, integration.notify_path, "198.51.100.9", forwarded="203.0.113.7").status_code == 403


def test_through_a_trusted_proxy_the_forwarded_client_counts(
    client: Client, integration: Integration, allow_list: Any
) -> None:
    allow_list.TRUSTED_PROXIES = ["10.0.0.0/8"]
    path = integration.notify_path
    assert post(client, path, "10.0.0.2", forwarded="203.0.113.7").status_code == 200
    # The proxy itself is not MTT.
    assert post(client, path, "10.0.0.2").status_code == 403
    # The client put an allowed address in front of its own; the proxy appended the real one.
    assert post(client, path, "10.0.0.2", forwarded="203.0.113.7, 198.51.100.9").status_code == 403
    assert post(client, path, "10.0.0.2", forwarded="2001:db8:40::5, 10.0.0.9").status_code == 200
    assert post(client, path, "10.0.0.2", forwarded="garbage").status_code == 403


def test_oauth_callback_is_not_restricted(client: Client, integration: Integration, allow_list: Any) -> None:
    # The admin's browser, from anywhere: it reaches the OAuth check (403 there for a missing state,
    # with its own message), not the allow-list.
    response = client.get(integration.notify_path + "?code=x&state=y", REMOTE_ADDR="198.51.100.9")
    assert response.status_code == 403
    assert "state" in response.content.decode()
