"""Call scenarios: the guide-shaped notifications (§9.4, §9.5, §10.1) the sandbox POSTs to the CRM.

A scenario is a plan of steps. Each step builds its payload only when it is due, so a leg's
``startTime`` is the moment it is sent and a parked call can be redirected by the CRM's transferCall
while the plan runs (guide §10.2).
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from .state import SandboxState, now_iso

logger = logging.getLogger(__name__)

# The PBX runs on Moscow time and writes startTime without a zone; Moscow has had no DST since 2014.
MOSCOW = timezone(timedelta(hours=3), "MSK")
CENTREX_ID = "67821426"
INCOMING_TRANSPORT = "10.133.33.136:5073"
OUTGOING_TRANSPORT = "10.133.51.137:5070"
# forwarderList of a call that reached a workplace through the PBX's routing (guide §10.1.7 example).
DEFAULT_ROUTE = [{"id": "an_prd100275045-3881851"}, {"id": "scheme_prd100275045-3885981"}]
CALL_SCENARIOS = ("incoming_answered", "incoming_missed", "click_to_call", "recorded")
SETTINGS_SCENARIOS = {"numbers_changed": "numbersChanged", "workplaces_changed": "workplacesChanged"}
SCENARIOS = CALL_SCENARIOS + tuple(SETTINGS_SCENARIOS)
_ALNUM = string.ascii_letters + string.digits
_LOWER = string.ascii_lowercase + string.digits
CYRILLIC_E = "\u0435"  # looks like Latin "e"; the guide's own tag "sdfе2n901-…" holds one


class ScenarioError(ValueError):
    """A scenario request that cannot run (answered with HTTP 400)."""


def _rand(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def msk_now() -> str:
    return datetime.now(MOSCOW).strftime("%Y-%m-%d %H:%M:%S")


def new_incoming_base() -> str:
    # Shaped like the guide's "c166e238a4c211ea9d373863bb43daf8_00015ED635780FC7".
    return f"{uuid.uuid4().hex}_{secrets.token_hex(8).upper()}"


def new_outgoing_call_id() -> str:
    # Shaped like the guide's "SDfe2n901-b510751695c9e53584301f0c0e8d98c9200@127.0.0.1".
    return f"SD{_rand(_ALNUM, 7)}-{secrets.token_hex(20)}200@127.0.0.1"


def new_make_call_id() -> str:
    # Shaped like makeCall's answer "7NKe6!8fa1FMSlc6ypZdb1GSV6ZN@10.133.51.137".
    return f"{_rand(_ALNUM, 5)}!{_rand(_ALNUM, 22)}@10.133.51.137"


def incoming_tag(cyrillic: bool = False) -> str:
    # Shaped like "hswdfry52vmykfla____.o"; optionally with a Cyrillic letter so consumers must echo bytes.
    body = _rand(_LOWER, 16)
    if cyrillic:
        pos = 3 + secrets.randbelow(10)
        body = body[:pos] + CYRILLIC_E + body[pos + 1 :]
    return f"{body}____.o"


def outgoing_tag() -> str:
    # Shaped like the guide's "sdfе2n901-281028329", Cyrillic "е" included.
    return f"sdf{CYRILLIC_E}{_rand(_LOWER, 5)}-{secrets.randbelow(900_000_000) + 100_000_000}"


def _without_plus(number: str) -> str:
    # Numbers arrive as the network gave them (§6.4): the guide's own legs alternate "+7921…" and "7921…".
    return number[1:] if number.startswith("+") else number


def _party(**fields: Any) -> dict[str, Any]:
    return dict(sorted(fields.items()))


@dataclass
class Leg:
    call_id: str
    tag: str
    type: str
    transport_id: str
    caller: dict[str, Any]
    callee: dict[str, Any]
    start_time: str | None = None

    def payload(self, state: str, *, start_time: str | None = None, **finished: Any) -> dict[str, Any]:
        info: dict[str, Any] = {
            "call": {"id": self.call_id, "tag": self.tag},
            "callee": dict(self.callee),
            "caller": dict(self.caller),
            "state": state,
            "transportId": self.transport_id,
            "type": self.type,
        }
        if state == "finished":
            info.update(finished)  # duration, reason, reasonCode; the guide's finished has no startTime
        else:
            info["startTime"] = start_time or self.start_time or msk_now()
        return call_notification(info)


def call_notification(info: dict[str, Any]) -> dict[str, Any]:
    return {"event": "callNotifications", "result": {"callInfo": dict(sorted(info.items()))}}


def settings_notification(event_type: str) -> dict[str, Any]:
    return {"event": "vpbxNotifications", "result": {"eventType": event_type}}


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
        for name in ("duplicate", "cyrillic_tags"):
            if not isinstance(getattr(req, name), bool):
                raise ScenarioError(f"{name} must be true or false")
        for name in ("scenario", "caller"):
            if not isinstance(getattr(req, name), str) or not getattr(req, name):
                raise ScenarioError(f"{name} must be a non-empty string")
        for name in ("external_number", "workplace", "notify_url", "call_id"):
            if getattr(req, name) is not None and not isinstance(getattr(req, name), str):
                raise ScenarioError(f"{name} must be a string")
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


Step = Callable[[], dict[str, Any]]


@dataclass
class Wait:
    """A pause inside a plan (not a notification): waits for the CRM to handle a parked call."""

    run: Callable[[], None]


@dataclass
class Plan:
    scenario: str
    call_id: str
    steps: list[Step | Wait] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(1 for s in self.steps if not isinstance(s, Wait))


class ScenarioRunner:
    """Builds plans and delivers them from background threads."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.session_headers = {"Content-Type": "application/json", "User-Agent": "mtt-sandbox/1.0"}

    # --- entry point -----------------------------------------------------------------------------

    def start(self, req: ScenarioRequest) -> dict[str, Any]:
        """Validate, plan and start delivering; returns ``{"call_id", "notifications"}``."""
        if req.scenario not in SCENARIOS:
            raise ScenarioError(f"unknown scenario {req.scenario!r}; expected one of {', '.join(SCENARIOS)}")
        url = self.state.notify_url(req.notify_url)
        if not url:
            raise ScenarioError(
                "no notify URL: authorize a client through /oauth/authorize, set notify_url "
                "with POST /_sandbox/config, or pass notify_url"
            )
        plan = self._plan(req)
        delay = self.state.config.step_delay if req.step_delay is None else float(req.step_delay)
        copies = 2 if req.duplicate else 1
        thread = threading.Thread(
            target=self._run,
            args=(plan, url, delay, copies),
            name=f"sandbox-{req.scenario}",
            daemon=True,
        )
        thread.start()
        logger.info("Sandbox: scenario %s call %s -> %s", req.scenario, plan.call_id, url)
        return {"call_id": plan.call_id, "notifications": plan.count * copies}

    def _plan(self, req: ScenarioRequest) -> Plan:
        if req.scenario in SETTINGS_SCENARIOS:
            event = SETTINGS_SCENARIOS[req.scenario]
            return Plan(req.scenario, "", [lambda: settings_notification(event)])
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
        duration = req.duration if req.duration is not None else 5 + secrets.randbelow(115)
        if req.scenario == "recorded":
            call_id = req.call_id or new_outgoing_call_id()
            return Plan(req.scenario, call_id, [lambda: self.recorded(call_id, workplace)])
        if req.scenario == "click_to_call":
            return self._click_to_call(req, workplace, number, duration)
        return self._incoming(req, workplace, number, duration, answered=req.scenario == "incoming_answered")

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
        return leg.payload(state, **kwargs)

    def _click_to_call(self, req: ScenarioRequest, workplace: str, number: str, duration: int) -> Plan:
        call_id = req.call_id or new_outgoing_call_id()
        client = req.caller
        caller = _party(
            accountId=workplace, centrexId=CENTREX_ID, displayId=number, forwarderList=[], id=number
        )
        leg = Leg(
            call_id,
            outgoing_tag(),
            "outgoing",
            OUTGOING_TRANSPORT,
            caller,
            _party(displayId=client, forwarderList=[], id=client),
        )
        # After the answer the network reports the number without "+", as in the guide's examples.
        answered = _party(displayId=_without_plus(client), forwarderList=[], id=_without_plus(client))

        def connected() -> dict[str, Any]:
            leg.callee = answered
            return self._announce(leg, "connected", start_time=msk_now())

        def hiding() -> dict[str, Any]:
            leg.callee = _party(displayId=client, forwarderList=[], id=client)
            return self._announce(leg, "hiding")

        def finished() -> dict[str, Any]:
            leg.callee = answered
            return self._announce(
                leg, "finished", duration=duration, reason="Originate leg disconnected", reasonCode=None
            )

        steps: list[Step | Wait] = [
            lambda: self._announce(leg, "trying"),
            lambda: self._announce(leg, "showing"),
            connected,
            hiding,
            finished,
            lambda: self.recorded(call_id, workplace),
        ]
        return Plan(req.scenario, call_id, steps)

    def _incoming(
        self, req: ScenarioRequest, workplace: str, number: str, duration: int, *, answered: bool
    ) -> Plan:
        base = req.call_id or new_incoming_base()
        client = req.caller
        caller = _party(
            accountId=f"{_without_plus(client)}@pstn", displayId=client, forwarderList=[], id=client
        )
        parked = Leg(
            f"{base}~1o",
            incoming_tag(cyrillic=req.cyrillic_tags),
            "incoming",
            INCOMING_TRANSPORT,
            caller,
            _party(
                accountId=number,
                centrexId=CENTREX_ID,
                displayId=number,
                displayName="",
                forwarderList=[],
                id=number,
            ),
        )

        def employee_callee(target: str, route: list[dict[str, str]]) -> dict[str, Any]:
            return _party(
                accountId=target,
                centrexId=CENTREX_ID,
                displayId=target,
                display_name=number,
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
            if call.action == "transfer" and call.target:
                logger.info("Sandbox: parked call %s transferred to %s", parked.call_id, call.target)
                employee.callee = employee_callee(call.target, [])
            elif call.action == "terminate":
                logger.info("Sandbox: parked call %s released to the PBX routing", parked.call_id)

        steps: list[Step | Wait] = [
            parked_trying,
            Wait(wait_for_crm),
            lambda: self._announce(employee, "trying"),
            lambda: self._announce(employee, "showing"),
        ]
        if answered:
            steps += [
                lambda: self._announce(employee, "connected", start_time=msk_now()),
                lambda: self._announce(
                    parked, "finished", duration=duration, reason="Normal call clearing", reasonCode="16"
                ),
                lambda: self._announce(
                    employee, "finished", duration=duration, reason="Answer leg disconnected", reasonCode=None
                ),
                lambda: self.recorded(employee.call_id, str(employee.callee["id"])),
            ]
        else:
            steps += [
                lambda: self._announce(employee, "hiding"),
                lambda: self._announce(employee, "finished", duration=0, reason="No answer", reasonCode="19"),
                lambda: self._announce(
                    parked, "finished", duration=0, reason="Originate leg disconnected", reasonCode=None
                ),
            ]
        return Plan(req.scenario, base, steps)

    # --- delivery --------------------------------------------------------------------------------

    def _run(self, plan: Plan, url: str, delay: float, copies: int) -> None:
        sent = 0
        try:
            for step in plan.steps:
                if self.state.stopping.is_set():
                    return
                if isinstance(step, Wait):
                    step.run()
                    continue
                # Event.wait doubles as an interruptible sleep so a stopping sandbox ends the thread at once.
                if sent and delay > 0 and self.state.stopping.wait(delay):
                    return
                payload = step()
                for _ in range(copies):
                    self._post(url, payload, plan)
                sent += 1
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
