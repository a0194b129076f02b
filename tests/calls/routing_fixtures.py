"""The routing tests' shared world (tests/calls/test_routing_*.py): the sandbox parking calls on a parked
line, a receiver for what it sends, two operators and a client with a personal manager; ringing the line,
posting what MTT sent to the notify URL, and what reached the sandbox.

The sandbox parks the call and POSTs the parked leg's ``trying`` to a receiver; the test hands that exact
notification to the CRM's notify URL (so the CRM sees what MTT sent, Cyrillic tag and all), and the CRM's
transferCall/terminateCall reaches the sandbox, which checks call id and tag byte for byte."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import translation

from calls.routing import routing_pool_shutdown
from contacts.models import Contact
from contacts.services import contact_add_number
from integrations.applier import applier_drain
from integrations.models import Integration, Workplace
from sandbox.testing import Receiver, RunningSandbox, running_receiver, running_sandbox
from tests.mtt_sandbox import connect

WP1, WP2, WP3 = "883140000000001", "883140000000002", "883140000000003"
LINE = "74996497803"
CLIENT = "+79219462761"
CYRILLIC_E = "\u0435"


@pytest.fixture(autouse=True)
def english(settings: Any) -> Iterator[None]:
    """These tests read the English wording; the UI's default is Russian."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(step_delay=0.01, auto_click_to_call=False, parking_timeout=5.0) as sb:
        yield sb


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as rx:
        yield rx


@pytest.fixture(autouse=True)
def routing_settings(settings: Any) -> Iterator[None]:
    settings.MTT_RATE_LIMIT_KEY_PREFIX = f"test-routing:{uuid.uuid4().hex}:"
    yield
    routing_pool_shutdown()  # the sender threads' database connections must not outlive the test


def _setup(sandbox: RunningSandbox, capture: Any) -> dict[str, Any]:
    mtt = connect(sandbox, capture)
    users = get_user_model().objects
    ivanova = users.create_user("ivanova", password="x-pass-123", first_name="Мария", last_name="Иванова")
    petrov = users.create_user("petrov", password="x-pass-123", first_name="Алексей", last_name="Петров")
    Workplace.objects.filter(integration=mtt, sip_id=WP1).update(user=ivanova)
    Workplace.objects.filter(integration=mtt, sip_id=WP2).update(user=petrov)
    client = Contact.objects.create(name="Пётр Клиентов", personal_manager=ivanova)
    contact_add_number(contact=client, number=CLIENT)
    from integrations.parking import external_numbers_set_parking

    external_numbers_set_parking(integration=mtt, numbers=[LINE], is_parking=True)
    assert sandbox.state.is_parking(LINE)
    sandbox.control("DELETE", "requests")
    return {"mtt": mtt, "ivanova": ivanova, "petrov": petrov, "client": client}


@pytest.fixture
def world(
    transactional_db: Any, sandbox: RunningSandbox, django_capture_on_commit_callbacks: Any
) -> dict[str, Any]:
    # Committed rows: the applier's commit sends the command from the sender pool's own threads.
    return _setup(sandbox, django_capture_on_commit_callbacks)


def post(client: Client, integration: Integration, body: Any, capture: Any) -> None:
    """The notify URL stores it, the applier applies it, the routing command leaves after the commit."""
    response = client.post(
        integration.notify_path, json.dumps(body, ensure_ascii=False), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    applier_drain()
    routing_pool_shutdown()  # waits for the commands in flight


def ring(
    sandbox: RunningSandbox,
    receiver: Receiver,
    caller: str = CLIENT,
    line: str = LINE,
    number_form: str | None = None,
) -> dict[str, Any]:
    """Start an incoming call to ``line``; return the parked leg's trying as the sandbox sent it.
    ``number_form``: how the PBX writes the numbers ("as_is", "8", "00"; guide §6.4)."""
    scenario = {
        "scenario": "incoming_missed",
        "caller": caller,
        "external_number": line,
        "workplace": WP3,  # where the PBX's own routing sends the call
        "notify_url": receiver.url,
    }
    if number_form is not None:
        scenario["number_form"] = number_form
    sandbox.control("POST", "scenario", scenario)
    [trying] = receiver.wait_for(1)
    info = trying["result"]["callInfo"]
    assert info["state"] == "trying" and info["call"]["id"].endswith("~1o")
    return dict(trying)


def routed_to(receiver: Receiver) -> str:
    """Whose workplace the call rang after the parking (the employee leg's callee)."""
    bodies = receiver.wait_for(2)
    return str(bodies[1]["result"]["callInfo"]["callee"]["id"])


def commands(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    return [r for r in sandbox.control("GET", "requests") if r["path"] in ("/transferCall", "/terminateCall")]
