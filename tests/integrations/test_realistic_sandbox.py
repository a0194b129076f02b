"""The MTT side of the CRM against the realistic sandbox (sandbox/quirks.py): what the guide allows and
our friendly sandbox never did — the table's spellings, numbers in any form, copies — through the real
client, the real notify URL and the directory sync."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from integrations.applier import applier_drain
from integrations.models import ExternalNumber, Integration, NotificationEvent, Terminal
from integrations.mtt.notifications import PRIORITY_CARD, VPBX_EVENT, parse_body
from integrations.parking import external_numbers_set_parking
from integrations.selectors import external_number_for
from sandbox.testing import Receiver, RunningSandbox, running_receiver, running_sandbox
from tests.mtt_sandbox import connect

LINE = "74996497803"
CLIENT = "+79219462761"


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(step_delay=0.01, auto_click_to_call=False, mode="realistic") as sb:
        yield sb


@pytest.fixture(autouse=True)
def _own_limiter_keys(settings: Any) -> None:
    settings.MTT_RATE_LIMIT_KEY_PREFIX = f"test-realistic:{uuid.uuid4().hex}:"


@pytest.fixture
def mtt(db: Any, sandbox: RunningSandbox, django_capture_on_commit_callbacks: Any) -> Integration:
    return connect(sandbox, django_capture_on_commit_callbacks)


def play(sandbox: RunningSandbox, receiver: Receiver, **scenario: Any) -> list[Any]:
    started = sandbox.control("POST", "scenario", {"notify_url": receiver.url, **scenario})
    return receiver.wait_for(started["notifications"])


def test_the_directory_sync_reads_the_guides_table_spelling(mtt: Integration) -> None:
    """terminalsinfo answers terminalsList[].terminale (guide §9.3's table): every terminal is synced
    with its workplace."""
    terminals = dict(Terminal.objects.filter(integration=mtt).values_list("sip_id", "workplace__sip_id"))
    assert terminals == {
        "883140000000101": "883140000000001",
        "883140000000102": "883140000000002",
        "883140000000103": "883140000000003",
        "883140000000201": "883140000000001",
    }
    assert set(ExternalNumber.objects.values_list("normalized", flat=True)) == {
        "+74996497803",
        "+78005560251",
    }


def test_our_line_is_recognised_in_the_8_and_00_forms(mtt: Integration, sandbox: RunningSandbox) -> None:
    line = ExternalNumber.objects.get(integration=mtt, number=LINE)
    seen = []
    for _ in range(2):
        with running_receiver() as rx:
            parked = play(sandbox, rx, scenario="incoming_missed", caller=CLIENT, external_number=LINE)[0]
        callee = parked["result"]["callInfo"]["callee"]
        seen.append(callee["id"])
        for raw in (callee["id"], callee["accountId"], callee["displayId"]):
            assert external_number_for(integration_id=mtt.pk, raw=raw) == line
    assert seen == ["84996497803", "0074996497803"]


def test_a_parked_capitalised_incoming_call_from_the_sandbox_is_urgent(
    mtt: Integration, sandbox: RunningSandbox
) -> None:
    external_numbers_set_parking(integration=mtt, numbers=[LINE], is_parking=True)
    with running_receiver() as rx:
        # The number as listed: until the lead wires line_key into the urgency check it matches only so.
        sandbox.control(
            "POST",
            "scenario",
            {
                "scenario": "incoming_missed",
                "external_number": LINE,
                "number_form": "as_is",
                "notify_url": rx.url,
            },
        )
        rx.wait_for(1)
        raw = rx.raw[0]
    envelope = parse_body(raw)
    assert json.loads(raw)["result"]["callInfo"]["type"] == "Incoming"  # as the sandbox sent it
    assert envelope.priority == PRIORITY_CARD  # applied before anything else waiting


def test_a_vrbx_directory_change_through_the_notify_url_syncs_once(
    mtt: Integration, sandbox: RunningSandbox, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    # The portal gets a new line, listed with a "+": the CRM learns it from the vrbxNotifications.
    numbers = [{"number": LINE}, {"number": "+78005560251", "type": "8800"}, {"number": "+74950000000"}]
    with running_receiver() as rx:
        sandbox.control("POST", "config", {"notify_url": rx.url})
        sandbox.control("POST", "directory", {"numbers": numbers, "notify": True})
        bodies = rx.wait_for(2)  # the quirk "copies": twice
    assert bodies[0] == bodies[1] == {"event": "vrbxNotifications", "result": {"eventType": "numbersChanged"}}
    for body in bodies:
        response = client.post(mtt.notify_path, json.dumps(body), content_type="application/json")
        assert response.status_code == 200, response.content
    with django_capture_on_commit_callbacks(execute=True):
        applier_drain()
    event = NotificationEvent.objects.get(integration=mtt)  # the copy is stored once
    assert (event.event, event.status) == (VPBX_EVENT, NotificationEvent.Status.APPLIED)
    new = external_number_for(integration_id=mtt.pk, raw="84950000000")
    assert new is not None and new.number == "+74950000000"
    assert external_number_for(integration_id=mtt.pk, raw="88005560251") is not None
