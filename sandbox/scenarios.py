"""Call scenarios: the guide-shaped notifications (§9.4, §9.5, §10.1) the sandbox POSTs to the CRM.

A scenario is a plan of steps. Each step builds its payload only when it is due, so a leg's
``startTime`` is the moment it is sent and a parked call can be redirected by the CRM's transferCall
while the plan runs (guide §10.2). What goes on the wire is then bent by the sandbox's quirks
(sandbox/quirks.py: spellings, number forms, copies, order).
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from .payloads import (
    CENTREX_ID,
    DEFAULT_ROUTE,
    INCOMING_TRANSPORT,
    MOSCOW,
    OUTGOING_TRANSPORT,
    Leg,
    call_notification,
    incoming_tag,
    msk_now,
    new_incoming_base,
    new_outgoing_call_id,
    outgoing_tag,
    party,
    settings_notification,
    without_plus,
)
from .quirks import Delivery, dress, number_in_form
from .state import SandboxState, now_iso

logger = logging.getLogger(__name__)

CALL_SCENARIOS = ("incoming_answered", "incoming_missed", "incoming_ip_sip", "click_to_call", "recorded")
SETTINGS_SCENARIOS = {"numbers_changed": "numbersChanged", "workplaces_changed": "workplacesChanged"}
SCENARIOS = CALL_SCENARIOS + tuple(SETTINGS_SCENARIOS)
# A scenario's number_form: how numbers are written in its notifications (guide §6.4).
NUMBER_FORM_NAMES = {"as_is": "", "8": "8", "00": "00"}


class ScenarioError(ValueError):
    """A scenario request that cannot run (answered with HTTP 400)."""


@dataclass
class ScenarioRequest:
    scenario: str
    caller: str = "+79219462761"
    external_number: str | None = None
    workplace: str | None = None
    notify_url: str | None = None
    step_delay: float | None = None
    duplicate: bool = False
    call_id: str | None = None
    duration: int | None = None
    cyrillic_tags: bool = True
    # The call's finished never comes (the guide promises no resend, nor an order).
    lose_finished: bool = False
    # "as_is", "8" or "00"; None: as_is, or alternating 8/00 with the number_forms quirk.
    number_form: str | None = None
    # click_to_call: whether the client picks up (false: the client's phone rings out, nobody talks).
    answered: bool = True

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioRequest:
        if not isinstance(data, dict):
            raise ScenarioError("body must be a JSON object")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ScenarioError(f"unknown fields: {', '.join(sorted(unknown))}")
        if "scenario" not in data:
            raise ScenarioError(f"scenario is required: one of {', '.join(SCENARIOS)}")
        req = cls(**data)
        for name in ("duplicate", "cyrillic_tags", "lose_finished", "answered"):
            if not isinstance(getattr(req, name), bool):
                raise ScenarioError(f"{name} must be true or false")
        for name in ("scenario", "caller"):
            if not isinstance(getattr(req, name), str) or not getattr(req, name):
                raise ScenarioError(f"{name} must be a non-empty string")
        for name in ("external_number", "workplace", "notify_url", "call_id"):
            if getattr(req, name) is not None and not isinstance(getattr(req, name), str):
                raise ScenarioError(f"{name} must be a string")
        if req.number_form is not None and req.number_form not in NUMBER_FORM_NAMES:
            raise ScenarioError(f"number_form must be one of {', '.join(NUMBER_FORM_NAMES)}")
        if req.step_delay is not None and (
            isinstance(req.step_delay, bool)
            or not isinstance(req.step_delay, int | float)
            or req.step_delay < 0
        ):
            raise ScenarioError("step_delay must be a number >= 0")
        if req.duration is not None and (
            isinstance(req.duration, bool) or not isinstance(req.duration, int) or req.duration < 0
        ):
            raise ScenarioError("duration must be an integer >= 0")
        return req


@dataclass
class TalkClock:
    """The talk a call's ``finished`` reports: the seconds that really passed since the call was answered (its
    ``connected`` was sent; for an IP SIP terminal, which sends none, its ``trying``), at least 1 — so the
    demo's figures agree with the times the notifications came at. A scenario's ``duration`` is reported as
    asked instead, however long the sandbox took (a test of a PBX's figure that disagrees with the arrival
    times: the CRM bounds it, README "Call times")."""

    asked: int | None = None
    answered: float | None = None

    def answer(self) -> None:
        if self.answered is None:
            self.answered = time.monotonic()

    def seconds(self) -> int:
        if self.asked is not None:
            return self.asked
        if self.answered is None:
            return 0
        return max(1, round(time.monotonic() - self.answered))


@dataclass
class Note:
    """One notification of a plan: its state, and how to build it when it is due."""

    state: str
    build: Callable[[], dict[str, Any]]


@dataclass
class Wait:
    """A pause inside a plan (not a notification): waits for the CRM to handle a parked call."""

    run: Callable[[], None]


@dataclass
class Plan:
    scenario: str
    call_id: str
    steps: list[Note | Wait] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(1 for s in self.steps if isinstance(s, Note))

    def without(self, state: str) -> Plan:
        return Plan(self.scenario, self.call_id, [s for s in self.steps if getattr(s, "state", "") != state])


class ScenarioRunner:
    """Builds plans and delivers them from background threads."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.session_headers = {"Content-Type": "application/json", "User-Agent": "mtt-sandbox/1.0"}
        # Calls so far: the number_forms quirk alternates 8… and 00… call by call (deterministic).
        self._calls = itertools.count()

    # --- entry point -----------------------------------------------------------------------------

    def start(self, req: ScenarioRequest) -> dict[str, Any]:
        """Validate, plan and start delivering; returns ``{"call_id", "notifications"}`` (POSTs)."""
        if req.scenario not in SCENARIOS:
            raise ScenarioError(f"unknown scenario {req.scenario!r}; expected one of {', '.join(SCENARIOS)}")
        if req.notify_url is not None and self.state.config.exposed:
            raise ScenarioError(
                "notify_url cannot be chosen on an exposed sandbox (SANDBOX_CONTROL_PASSWORD set): "
                "notifications go to the CRM that authorized it"
            )
        url = self.state.notify_url(req.notify_url)
        if not url:
            raise ScenarioError(
                "no notify URL: authorize a client through /oauth/authorize, set notify_url "
                "with POST /_sandbox/config, or pass notify_url"
            )
        plan = self._plan(req)
        if req.lose_finished:
            plan = plan.without("finished")
        delay = self.state.config.step_delay if req.step_delay is None else float(req.step_delay)
        quirks = self.state.config.quirks
        copies = (2 if req.duplicate else 1) * Delivery.factor(quirks)
        thread = threading.Thread(
            target=self._run,
            args=(plan, url, delay, 2 if req.duplicate else 1, quirks),
            name=f"sandbox-{req.scenario}",
            daemon=True,
        )
        thread.start()
        logger.info("Sandbox: scenario %s call %s -> %s", req.scenario, plan.call_id, url)
        return {"call_id": plan.call_id, "notifications": plan.count * copies}

    def _form(self, req: ScenarioRequest) -> str:
        if req.number_form is not None:
            return NUMBER_FORM_NAMES[req.number_form]
        if not self.state.config.has("number_forms"):
            return ""
        return "8" if next(self._calls) % 2 == 0 else "00"

    def _plan(self, req: ScenarioRequest) -> Plan:
        if req.scenario in SETTINGS_SCENARIOS:
            event = SETTINGS_SCENARIOS[req.scenario]
            return Plan(req.scenario, "", [Note("", lambda: settings_notification(event))])
        directory = self.state.config.directory
        first_workplace = str(directory.workplaces[0]["workplace"]) if directory.workplaces else ""
        workplace = req.workplace or first_workplace
        if workplace not in directory.workplace_ids():
            raise ScenarioError(
                f"unknown workplace {workplace!r}; known: {', '.join(sorted(directory.workplace_ids()))}"
            )
        number = req.external_number or (str(directory.numbers[0]["number"]) if directory.numbers else "")
        if req.scenario != "recorded" and number not in directory.number_ids():
            raise ScenarioError(f"unknown external number {number!r}")
        talk = TalkClock(req.duration)
        if req.scenario == "recorded":
            call_id = req.call_id or new_outgoing_call_id()
            return Plan(req.scenario, call_id, [Note("recorded", lambda: self.recorded(call_id, workplace))])
        form = self._form(req)
        if req.scenario == "click_to_call":
            return self._click_to_call(req, workplace, number, talk, form)
        return self._incoming(req, workplace, number, talk, form)

    # --- plans -----------------------------------------------------------------------------------

    def recorded(self, call_id: str, workplace: str) -> dict[str, Any]:
        today = datetime.now(MOSCOW)
        url = f"{self.state.config.base_url}/records/{today:%Y/%m/%d}/{uuid.uuid4()}.mp3"
        return call_notification(
            {"accountId": workplace, "call": {"id": call_id}, "state": "recorded", "urlRecord": url}
        )

    def _announce(self, leg: Leg, state: str, **kwargs: Any) -> dict[str, Any]:
        self.state.announce_leg(leg.call_id, leg.tag)
        if state == "trying":
            leg.start_time = msk_now()
        elif state == "finished":
            self.state.end_leg(leg.call_id)
        return leg.payload(state, **kwargs)

    def _note(self, leg: Leg, state: str, **kwargs: Any) -> Note:
        return Note(state, lambda: self._announce(leg, state, **kwargs))

    def _click_to_call(
        self, req: ScenarioRequest, workplace: str, number: str, talk: TalkClock, form: str
    ) -> Plan:
        call_id = req.call_id or new_outgoing_call_id()
        client, line = number_in_form(req.caller, form), number_in_form(number, form)
        caller = party(accountId=workplace, centrexId=CENTREX_ID, displayId=line, forwarderList=[], id=line)
        dialled = party(displayId=client, forwarderList=[], id=client)
        leg = Leg(call_id, outgoing_tag(), "outgoing", OUTGOING_TRANSPORT, caller, dialled)
        # After the answer the network reports the number without "+", as in the guide's examples.
        answered = party(displayId=without_plus(client), forwarderList=[], id=without_plus(client))

        def connected() -> dict[str, Any]:
            leg.callee = answered
            talk.answer()
            return self._announce(leg, "connected", start_time=msk_now())

        def hiding() -> dict[str, Any]:
            leg.callee = dialled
            return self._announce(leg, "hiding")

        def finished() -> dict[str, Any]:
            leg.callee = answered
            return self._announce(
                leg, "finished", duration=talk.seconds(), reason="Originate leg disconnected", reasonCode=None
            )

        def not_answered() -> dict[str, Any]:
            leg.callee = dialled
            return self._announce(leg, "finished", duration=0, reason="No answer", reasonCode="19")

        steps: list[Note | Wait] = [self._note(leg, "trying"), self._note(leg, "showing")]
        if req.answered:
            steps += [
                Note("connected", connected),
                Note("hiding", hiding),
                Note("finished", finished),
                Note("recorded", lambda: self.recorded(call_id, workplace)),
            ]
        else:
            steps += [Note("hiding", hiding), Note("finished", not_answered)]
        return Plan(req.scenario, call_id, steps)

    def _incoming(
        self, req: ScenarioRequest, workplace: str, number: str, talk: TalkClock, form: str
    ) -> Plan:
        base = req.call_id or new_incoming_base()
        client, line = number_in_form(req.caller, form), number_in_form(number, form)
        caller = party(
            accountId=f"{without_plus(req.caller)}@pstn", displayId=client, forwarderList=[], id=client
        )
        line_party = party(
            accountId=line, centrexId=CENTREX_ID, displayId=line, displayName="", forwarderList=[], id=line
        )
        parked = Leg(
            f"{base}~1o",
            incoming_tag(cyrillic=req.cyrillic_tags),
            "incoming",
            INCOMING_TRANSPORT,
            caller,
            line_party,
        )

        def employee_callee(target: str, route: list[dict[str, str]]) -> dict[str, Any]:
            return party(
                accountId=target,
                centrexId=CENTREX_ID,
                displayId=target,
                display_name=line,
                extensionId="",
                forwarderList=[dict(r) for r in route],
                id=target,
            )

        employee = Leg(
            f"{base}~2o",
            incoming_tag(),
            "incoming",
            INCOMING_TRANSPORT,
            dict(caller),
            employee_callee(workplace, DEFAULT_ROUTE),
        )
        parking: dict[str, Any] = {}

        def parked_trying() -> dict[str, Any]:
            payload = self._announce(parked, "trying")
            if self.state.is_parking(number):
                # Register before the POST: the CRM may transferCall while handling this very notification.
                parking["call"] = self.state.park(parked.call_id, parked.tag)
            return payload

        def wait_for_crm() -> None:
            call = parking.get("call")
            if call is None:
                return
            try:
                call.event.wait(self.state.config.parking_timeout)
            finally:
                self.state.unpark(parked.call_id)
                # The PBX routed the call (the CRM's way or its own): the parked leg takes no command now.
                self.state.end_leg(parked.call_id)
            if call.action == "transfer" and call.target:
                logger.info("Sandbox: parked call %s transferred to %s", parked.call_id, call.target)
                employee.callee = employee_callee(call.target, [])
            elif call.action == "terminate":
                logger.info("Sandbox: parked call %s released to the PBX routing", parked.call_id)

        def finished(leg: Leg, seconds: Callable[[], int], reason: str, code: str | None) -> Note:
            # The duration is read when the notification is due: the talk lasts until then.
            return Note(
                "finished",
                lambda: self._announce(leg, "finished", duration=seconds(), reason=reason, reasonCode=code),
            )

        def answered_now(leg: Leg, state: str) -> Note:
            """The leg's trying (IP SIP) or connected, from which the talk counts."""

            def build() -> dict[str, Any]:
                talk.answer()
                if state == "connected":
                    return self._announce(leg, state, start_time=msk_now())
                return self._announce(leg, state)

            return Note(state, build)

        def none() -> int:
            return 0

        steps: list[Note | Wait] = [Note("trying", parked_trying), Wait(wait_for_crm)]
        if req.scenario == "incoming_ip_sip":
            # Guide §6.1: with an IP SIP terminal (or forwarding outside) only trying and finished come;
            # §6.3: no recording either, the call did not pass through a workplace.
            # Answered as it rings (no connected comes), unless the scenario asks for a duration of 0.
            reason, code = ("Answer leg disconnected", None) if req.duration != 0 else ("No answer", "19")
            steps += [
                answered_now(employee, "trying"),
                finished(employee, talk.seconds, reason, code),
                finished(parked, talk.seconds, "Normal call clearing", "16"),
            ]
        elif req.scenario == "incoming_answered":
            steps += [
                self._note(employee, "trying"),
                self._note(employee, "showing"),
                answered_now(employee, "connected"),
                finished(parked, talk.seconds, "Normal call clearing", "16"),
                finished(employee, talk.seconds, "Answer leg disconnected", None),
                Note("recorded", lambda: self.recorded(employee.call_id, str(employee.callee["id"]))),
            ]
        else:
            steps += [
                self._note(employee, "trying"),
                self._note(employee, "showing"),
                self._note(employee, "hiding"),
                finished(employee, none, "No answer", "19"),
                finished(parked, none, "Originate leg disconnected", None),
            ]
        return Plan(req.scenario, base, steps)

    # --- delivery --------------------------------------------------------------------------------

    def _run(self, plan: Plan, url: str, delay: float, duplicates: int, quirks: frozenset[str]) -> None:
        def send(payload: dict[str, Any]) -> None:
            for _ in range(duplicates):
                self._post(url, payload, plan)

        delivery = Delivery(send, quirks)
        built = 0
        try:
            for step in plan.steps:
                if self.state.stopping.is_set():
                    return
                if isinstance(step, Wait):
                    delivery.flush()  # a parked call's trying must be out before the CRM can act
                    step.run()
                    continue
                # Event.wait doubles as an interruptible sleep so a stopping sandbox ends the thread at once.
                if built and delay > 0 and self.state.stopping.wait(delay):
                    return
                delivery.emit(dress(step.build(), quirks))
                built += 1
            delivery.finish()
        except Exception:
            logger.exception("Sandbox: scenario %s (call %s) crashed", plan.scenario, plan.call_id)

    def _post(self, url: str, payload: dict[str, Any], plan: Plan) -> None:
        info = payload.get("result", {}).get("callInfo", {})
        entry: dict[str, Any] = {
            "time": now_iso(),
            "url": url,
            "scenario": plan.scenario,
            "call_id": info.get("call", {}).get("id", plan.call_id),
            "state": info.get("state") or payload.get("result", {}).get("eventType"),
            "status": None,
            "error": None,
            "payload": payload,
        }
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            response = requests.post(
                url, data=data, headers=self.session_headers, timeout=self.state.config.notify_timeout
            )
            entry["status"] = response.status_code
            if response.status_code >= 400:
                logger.warning(
                    "Sandbox: notification %s to %s answered %s", entry["state"], url, response.status_code
                )
        except requests.RequestException as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            logger.warning("Sandbox: notification %s to %s failed: %s", entry["state"], url, entry["error"])
        self.state.record_notification(entry)
