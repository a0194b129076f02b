"""The ``/_sandbox/*`` control API used by tests and the demo page: logs, faults, config, scenarios."""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from .quirks import QUIRKS
from .scenarios import ScenarioError, ScenarioRequest, ScenarioRunner
from .state import Fault, SandboxState
from .web import json_response

logger = logging.getLogger(__name__)

_DIRECTORY_KEYS = {
    "workplaces": ("workplace", "name"),
    "terminals": ("terminal", "workplace"),
    "numbers": ("number",),
}
_FORM_MIMETYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class ControlError(ValueError):
    pass


def _body(request: Request) -> dict[str, Any]:
    raw = request.get_data(as_text=True)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ControlError("body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ControlError("body must be a JSON object")
    return data


def _bad(message: str) -> Response:
    return json_response({"error": {"code": 400, "message": message}}, 400)


class ControlEndpoints:
    def __init__(self, state: SandboxState, runner: ScenarioRunner) -> None:
        self.state = state
        self.runner = runner

    def dispatch(self, request: Request, name: str) -> Response:
        handler = getattr(self, f"{name}_{request.method.lower()}", None)
        if handler is None:
            return json_response({"error": {"code": 405, "message": "method not allowed"}}, 405)
        try:
            return handler(request)
        except ControlError as exc:
            return _bad(str(exc))

    # --- logs ------------------------------------------------------------------------------------

    def requests_get(self, request: Request) -> Response:
        return json_response(self.state.requests_snapshot(request.args.get("path")))

    def requests_delete(self, request: Request) -> Response:
        self.state.clear_requests()
        return json_response({"cleared": True})

    def notifications_get(self, request: Request) -> Response:
        return json_response(self.state.notifications_snapshot())

    def notifications_delete(self, request: Request) -> Response:
        self.state.clear_notifications()
        return json_response({"cleared": True})

    def state_get(self, request: Request) -> Response:
        return json_response(self.state.snapshot())

    def reset_post(self, request: Request) -> Response:
        """Forget logs, faults, parking flags and rate windows (tokens and clients stay)."""
        with self.state.lock:
            self.state.requests.clear()
            self.state.notifications.clear()
            self.state.commands.clear()
            self.state.calls.clear()
            self.state.faults.clear()
            self.state.parking.clear()
            self.state.reset_rate()
        return json_response({"reset": True})

    # --- faults ----------------------------------------------------------------------------------

    def faults_get(self, request: Request) -> Response:
        with self.state.lock:
            now = time.monotonic()
            return json_response({"faults": [f.as_dict() for f in self.state.faults if not f.expired(now)]})

    def faults_post(self, request: Request) -> Response:
        """Add a fault: ``path``, ``status``, ``delay`` (s), ``count`` (requests) or ``seconds`` (a
        period: every matching request until it ends), ``retry_after`` (the header of a 429/503),
        ``rate`` (bytes per second: a recording sent slowly)."""
        data = _body(request)
        path = data.get("path", "*")
        status = data.get("status")
        seconds = data.get("seconds")
        count = data.get("count", None if seconds is not None else 1)
        delay = data.get("delay", 0)
        retry_after = data.get("retry_after")
        rate = data.get("rate")
        if not isinstance(path, str) or not (path == "*" or path.startswith("/")):
            raise ControlError('path must be "*" or start with "/"')
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
        ):
            raise ControlError("status must be an HTTP error status 400-599 or null")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ControlError("count must be an integer >= 1")
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0
        ):
            raise ControlError("seconds must be a number > 0")
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise ControlError("delay must be a number of seconds >= 0")
        if retry_after is not None and (
            isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0
        ):
            raise ControlError("retry_after must be an integer number of seconds >= 0")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate < 1):
            raise ControlError("rate must be an integer number of bytes per second >= 1")
        if status is None and not delay and rate is None:
            raise ControlError("give a status, a delay, a rate or several")
        until = time.monotonic() + float(seconds) if seconds is not None else None
        self.state.add_fault(Fault(path, status, count, float(delay), until, retry_after, rate))
        logger.info(
            "Sandbox: fault added path=%s status=%s count=%s seconds=%s delay=%s retry_after=%s rate=%s",
            path, status, count, seconds, delay, retry_after, rate,
        )  # fmt: skip
        return self.faults_get(request)

    def faults_delete(self, request: Request) -> Response:
        self.state.clear_faults()
        return json_response({"faults": []})

    # --- config and tokens -----------------------------------------------------------------------

    def config_get(self, request: Request) -> Response:
        with self.state.lock:
            return json_response({"config": self.state.config.public_dict()})

    def config_post(self, request: Request) -> Response:
        data = _body(request)
        with self.state.lock:
            try:
                changed = self.state.config.patch(data)
            except ValueError as exc:
                raise ControlError(str(exc)) from exc
        logger.info("Sandbox: config patched %s", changed)
        return self.config_get(request)

    def mode_get(self, request: Request) -> Response:
        with self.state.lock:
            config = self.state.config
            return json_response({"mode": config.mode, "quirks": sorted(config.quirks), "available": QUIRKS})

    def mode_post(self, request: Request) -> Response:
        """``{"mode": "friendly" | "realistic"}`` or ``{"quirks": [names]}`` (sandbox/quirks.py); the
        demo page's buttons post ``mode`` as a form."""
        from_form = request.mimetype in _FORM_MIMETYPES
        data = dict(request.form.items()) if from_form else _body(request)
        if set(data) - {"mode", "quirks"} or len(data) != 1:
            raise ControlError('give one of "mode" or "quirks"')
        with self.state.lock:
            try:
                self.state.config.patch(data)
            except ValueError as exc:
                raise ControlError(str(exc)) from exc
        logger.info("Sandbox: mode %s, quirks %s", self.state.config.mode, sorted(self.state.config.quirks))
        if from_form:
            return self._back(f"mode: {self.state.config.mode}")
        return self.mode_get(request)

    def expire_tokens_post(self, request: Request) -> Response:
        return json_response({"expired": self.state.expire_access_tokens()})

    # --- directory -------------------------------------------------------------------------------

    def directory_get(self, request: Request) -> Response:
        with self.state.lock:
            return json_response(self.state.config.directory.as_dict())

    def directory_post(self, request: Request) -> Response:
        data = _body(request)
        notify = data.pop("notify", False)
        unknown = set(data) - set(_DIRECTORY_KEYS)
        if unknown:
            raise ControlError(f"unknown keys: {', '.join(sorted(unknown))}")
        for key, required in _DIRECTORY_KEYS.items():
            if key not in data:
                continue
            items = data[key]
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ControlError(f"{key} must be a list of objects")
            for item in items:
                missing = [r for r in required if r not in item]
                if missing:
                    raise ControlError(f"{key} item {item!r} lacks {', '.join(missing)}")
        with self.state.lock:
            directory = self.state.config.directory
            for key in _DIRECTORY_KEYS:
                if key in data:
                    setattr(directory, key, [dict(i) for i in data[key]])
        events: list[str] = []
        if notify:
            # What the real portal does after an edit (guide §9.4, §9.5): tell the CRM to fetch again.
            if "numbers" in data:
                events.append("numbers_changed")
            if "workplaces" in data or "terminals" in data:
                events.append("workplaces_changed")
            for event in events:
                try:
                    self.runner.start(ScenarioRequest(scenario=event))
                except ScenarioError as exc:
                    raise ControlError(str(exc)) from exc
        return json_response({**self.state.config.directory.as_dict(), "notified": events})

    # --- scenarios -------------------------------------------------------------------------------

    def scenario_post(self, request: Request) -> Response:
        from_form = request.mimetype in _FORM_MIMETYPES
        data: dict[str, Any]
        if from_form:
            # The demo page's forms: empty fields mean "default", a checkbox means true.
            data = {k: v for k, v in request.form.items() if v}
            for checkbox in ("duplicate", "lose_finished"):
                if checkbox in data:
                    data[checkbox] = True
        else:
            data = _body(request)
        try:
            result = self.runner.start(ScenarioRequest.from_json(data))
        except ScenarioError as exc:
            if from_form:
                return self._back(f"Ошибка / Error: {exc}")
            raise ControlError(str(exc)) from exc
        if from_form:
            return self._back(
                f"{data.get('scenario')}: {result['notifications']} notifications, call {result['call_id']}"
            )
        return json_response(result, 202)

    def _back(self, message: str) -> Response:
        response = Response(status=303)
        response.headers["Location"] = "/?msg=" + quote(message)
        return response
