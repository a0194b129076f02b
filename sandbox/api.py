"""The Open API methods of the PBX (guide §9.1–9.3, §10.2, §10.3) with bearer auth, rate limit and faults."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from oauthlib.oauth2 import WebApplicationServer
from werkzeug.wrappers import Request, Response

from .payloads import new_make_call_id, new_outgoing_call_id
from .scenarios import ScenarioError, ScenarioRequest, ScenarioRunner
from .state import SandboxState, now_iso
from .web import apply_fault, error_response, json_response

logger = logging.getLogger(__name__)

_NUMBER = re.compile(r"\+?\d{2,20}")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _params(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("params"), dict):
        raise ApiError(400, 'Body must be a JSON object {"params": {...}}')
    return body["params"]


def _string(params: dict[str, Any], key: str, *, allow_empty: bool = False) -> str:
    value = params.get(key)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise ApiError(400, f"params.{key} must be a {'' if allow_empty else 'non-empty '}string")
    return value


def _number(params: dict[str, Any], key: str) -> str:
    value = _string(params, key)
    if not _NUMBER.fullmatch(value):
        raise ApiError(400, f"params.{key} must be a phone number or SIP ID of digits, got {value!r}")
    return value


def _call_ref(params: dict[str, Any]) -> dict[str, str]:
    call = params.get("call")
    if not isinstance(call, dict):
        raise ApiError(400, "params.call must be an object {id, tag}")
    return {"id": _string(call, "id"), "tag": _string(call, "tag", allow_empty=True)}


class ApiEndpoints:
    def __init__(
        self, state: SandboxState, oauth_server: WebApplicationServer, runner: ScenarioRunner
    ) -> None:
        self.state = state
        self.oauth_server = oauth_server
        self.runner = runner
        self.methods: dict[str, tuple[str, Callable[[Any], Any]]] = {
            "/externalNumbersInfo": ("GET", self.external_numbers_info),
            "/workplacesInfo": ("GET", self.workplaces_info),
            "/terminalsinfo": ("GET", self.terminals_info),
            "/setParkingNumbers": ("POST", self.set_parking_numbers),
            "/makeCall": ("POST", self.make_call),
            "/terminateCall": ("POST", self.terminate_call),
            "/transferCall": ("POST", self.transfer_call),
        }

    def dispatch(self, request: Request) -> Response:
        body: Any = None
        raw = request.get_data(as_text=True) if request.method == "POST" else ""
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        try:
            response = self._handle(request, body, bad_json)
        except ApiError as exc:
            response = error_response(exc.status, exc.message)
        self.state.log_request(request.method, request.path, body, response.status_code)
        return response

    def _handle(self, request: Request, body: Any, bad_json: bool) -> Response:
        # A trailing slash is a client slip worth forgiving, not a different method.
        path = request.path.rstrip("/") or "/"
        faulted = apply_fault(self.state, path)
        if faulted is not None:
            return faulted
        if path not in self.methods:
            return error_response(404, f"Unknown method {path}")
        valid, oauth_request = self.oauth_server.verify_request(
            request.url, http_method=request.method, body=None, headers=dict(request.headers), scopes=[]
        )
        if not valid:
            return error_response(401, "Unauthorized")
        if not self.state.rate_allow(oauth_request.client_id):
            logger.info("Sandbox: rate limit hit by client %s on %s", oauth_request.client_id, path)
            return error_response(
                429, f"Too Many Requests: limit is {self.state.config.rate_limit} per second"
            )
        method, handler = self.methods[path]
        if request.method != method:
            return error_response(405, f"{path} expects {method}")
        if bad_json:
            raise ApiError(400, "Body is not valid JSON")
        return json_response(handler(body))

    # --- settings (guide §9) ---------------------------------------------------------------------

    def external_numbers_info(self, body: Any) -> dict[str, Any]:
        with self.state.lock:
            numbers = [
                {"number": str(n["number"]), "type": n.get("type")}
                for n in self.state.config.directory.numbers
            ]
        return {"result": {"total": len(numbers), "numbersList": numbers}}

    def workplaces_info(self, body: Any) -> dict[str, Any]:
        with self.state.lock:
            items = [
                {"workplace": str(w["workplace"]), "name": w.get("name", "")}
                for w in self.state.config.directory.workplaces
            ]
        return {"result": {"total": len(items), "workplacesList": items}}

    def terminals_info(self, body: Any) -> dict[str, Any]:
        with self.state.lock:
            # The guide's table (§9.3) says terminalsList[].terminale, its example terminals_list[].terminal.
            table = self.state.config.has("terminale_key")
            items = [
                {"terminale" if table else "terminal": str(t["terminal"]), "workplace": str(t["workplace"])}
                for t in self.state.config.directory.terminals
            ]
            key = "terminalsList" if table else self.state.config.terminals_key
        return {"result": {"total": len(items), key: items}}

    # --- calls (guide §10.2, §10.3) --------------------------------------------------------------

    def set_parking_numbers(self, body: Any) -> dict[str, Any]:
        params = _params(body)
        numbers = params.get("numbers")
        if not isinstance(numbers, list) or not numbers or not all(isinstance(n, str) for n in numbers):
            raise ApiError(400, "params.numbers must be a non-empty list of strings")
        is_parking = params.get("isParking")
        if not isinstance(is_parking, bool):
            raise ApiError(400, "params.isParking must be true or false")
        with self.state.lock:
            unknown = [n for n in numbers if n not in self.state.config.directory.number_ids()]
            if unknown:
                raise ApiError(400, f"Unknown external number(s): {', '.join(unknown)}")
            for number in numbers:
                self.state.parking[number] = is_parking
        logger.info("Sandbox: parking %s for %s", "on" if is_parking else "off", ", ".join(numbers))
        return {"success": 1}  # the guide's bare answer, without "result"

    def make_call(self, body: Any) -> dict[str, Any]:
        params = _params(body)
        caller_id = _string(params, "callerId")
        directory = self.state.config.directory
        if caller_id not in directory.workplace_ids():
            what = (
                "a terminal SIP ID; makeCall needs a workplace SIP ID"
                if caller_id in directory.terminal_ids()
                else "not a known workplace SIP ID"
            )
            raise ApiError(400, f"callerId {caller_id} is {what}")
        callee = _number(params, "calleid")
        call_id = new_make_call_id()
        # The guide's makeCall answer (§10.3.1) and the call's notifications (§10.1.2) show different
        # ids, and nothing says they are one: the friendly mode uses the answer's id for both.
        notified = new_outgoing_call_id() if self.state.config.has("foreign_call_ids") else call_id
        with self.state.lock:
            self.state.calls.append(
                {
                    "call_id": call_id,
                    "notified_call_id": notified,
                    "callerId": caller_id,
                    "calleid": callee,
                    "time": now_iso(),
                }
            )
        logger.info("Sandbox: makeCall %s -> %s as %s (notified as %s)", caller_id, callee, call_id, notified)
        if self.state.config.auto_click_to_call:
            try:
                self.runner.start(
                    ScenarioRequest(
                        scenario="click_to_call", caller=callee, workplace=caller_id, call_id=notified
                    )
                )
            except ScenarioError as exc:
                # The call itself succeeded; only the demo notifications cannot go anywhere.
                logger.warning("Sandbox: makeCall %s plays no notifications: %s", call_id, exc)
        return {"result": {"call": {"id": call_id}, "success": 1}}

    def terminate_call(self, body: Any) -> dict[str, Any]:
        params = _params(body)
        call = _call_ref(params)
        transport_id = _string(params, "transportId")
        if refused := self._record("terminateCall", call, transport_id):
            return refused
        self.state.resolve_parked(call["id"], call["tag"], "terminate")
        return {"result": {"success": 1}}

    def transfer_call(self, body: Any) -> dict[str, Any]:
        params = _params(body)
        call = _call_ref(params)
        target = _number(params, "calleid")
        transport_id = _string(params, "transportId")
        if refused := self._record("transferCall", call, transport_id, calleid=target):
            return refused
        self.state.resolve_parked(call["id"], call["tag"], "transfer", target)
        return {"result": {"success": 1}}

    def _record(
        self, command: str, call: dict[str, str], transport_id: str, **extra: str
    ) -> dict[str, Any] | None:
        """Log the command; with refuse_gone_legs, the refusal of a command for a leg that is not live."""
        matched = self.state.leg_matches(call["id"], call["tag"])
        live = self.state.leg_live(call["id"], call["tag"])
        refused = self.state.config.has("refuse_gone_legs") and not live
        entry = {
            "command": command,
            "call": call,
            "transportId": transport_id,
            "matched_leg": matched,
            "live_leg": live,
            "refused": refused,
            "time": now_iso(),
            **extra,
        }
        self.state.record_command(entry)
        logger.info(
            "Sandbox: %s call=%s matched_leg=%s live=%s %s", command, call["id"], matched, live, extra or ""
        )
        if not refused:
            return None
        # A 200 that did nothing: a client reading only the status line would believe it worked.
        return {"result": {"success": 0, "message": f"Call leg {call['id']} not found"}}
