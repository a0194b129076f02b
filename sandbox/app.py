"""The sandbox WSGI application: a local stand-in for MTT's OAuth server, Open API and notifications.

Plain werkzeug, no Django: tests run it in a thread of the pytest process without touching Django's
URLconf, and the ``mtt_sandbox`` management command only starts it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from . import pages
from .api import ApiEndpoints
from .config import SandboxConfig
from .control import ControlEndpoints
from .oauth import OAuthEndpoints
from .scenarios import ScenarioRunner
from .state import API_PATHS, SandboxState
from .web import error_response, play_fault, trickle

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

logger = logging.getLogger(__name__)

RECORDING = Path(__file__).resolve().parent / "static" / "recording.mp3"
CONTROL_NAMES = (
    "requests",
    "notifications",
    "faults",
    "config",
    "mode",
    "expire-tokens",
    "directory",
    "scenario",
    "state",
    "reset",
)


class SandboxApp:
    """``SandboxApp(config)`` is a WSGI callable; ``.state`` is the live in-memory state."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.state = SandboxState(self.config)
        self.runner = ScenarioRunner(self.state)
        self.oauth = OAuthEndpoints(self.state)
        self.api = ApiEndpoints(self.state, self.oauth.server, self.runner)
        self.control = ControlEndpoints(self.state, self.runner)
        rules = [
            Rule("/", endpoint="index", methods=["GET"]),
            Rule("/oauth/authorize", endpoint="authorize", methods=["GET", "POST"]),
            Rule("/oauth/token", endpoint="token", methods=["POST"]),
            Rule("/records/<path:path>", endpoint="record", methods=["GET", "HEAD"]),
            *(Rule(f"/_sandbox/{name}", endpoint=f"control:{name}") for name in CONTROL_NAMES),
            # Method checks of API paths happen after auth, like on a real gateway, and get logged.
            *(Rule(path, endpoint="api") for path in API_PATHS),
        ]
        self.url_map = Map(rules, strict_slashes=False)

    def shutdown(self) -> None:
        """Stop scenario threads between notifications."""
        self.state.stopping.set()

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except NotFound:
            if request.path.startswith(("/_sandbox/", "/oauth/", "/records/")) or request.path == "/":
                return error_response(404, f"Not found: {request.path}")
            # Probably a misspelt API method: answer like the API and log it so the test shows the path.
            return self.api.dispatch(request)
        except MethodNotAllowed:
            if request.path == "/oauth/token":
                self.state.log_request(request.method, request.path, None, 405)
            return error_response(405, f"{request.method} not allowed here")
        except HTTPException as exc:
            return exc.get_response(request.environ)
        if (endpoint == "index" or endpoint.startswith("control:")) and not self._control_allowed(request):
            response = error_response(401, "Login required: the sandbox's control login (SANDBOX_LOGIN)")
            response.headers["WWW-Authenticate"] = 'Basic realm="MTT sandbox", charset="UTF-8"'
            return response
        if endpoint == "index":
            snapshot = self.state.snapshot()
            snapshot["notifications"] = self.state.notifications_snapshot()[-30:]
            snapshot["requests"] = self.state.requests_snapshot()[-30:]
            return pages.index_page(self.config, snapshot, request.args.get("msg"))
        if endpoint == "authorize":
            return self.oauth.authorize(request)
        if endpoint == "token":
            return self.oauth.token(request)
        if endpoint == "record":
            return self.record(request, values["path"])
        if endpoint == "api":
            return self.api.dispatch(request)
        name = endpoint.split(":", 1)[1].replace("-", "_")
        return self.control.dispatch(request, name)

    def _control_allowed(self, request: Request) -> bool:
        """The control panel and /_sandbox/: open on loopback, behind HTTP Basic when exposed."""
        expected = self.config.control_password
        if not expected:
            return True
        auth = request.authorization
        if auth is None or auth.type != "basic":
            return False
        login_ok = secrets.compare_digest((auth.username or "").encode(), self.config.login.encode())
        password_ok = secrets.compare_digest((auth.password or "").encode(), expected.encode())
        return login_ok and password_ok

    def record(self, request: Request, path: str) -> Response:
        if not path.endswith(".mp3"):
            return error_response(404, "Recordings are .mp3 files")
        # Every request is logged, the faulted ones too (tests count the attempts).
        with self.state.lock:
            self.state.record_downloads.append(request.path)
        # Faults injected for this path (POST /_sandbox/faults): a delay, an error, a slow body.
        faulted, fault = play_fault(self.state, request.path)
        if faulted is not None:
            return faulted
        refused = self._record_access(request)
        if refused is not None:
            return refused
        # The guide says "*.mp3" (§10.1.3), never which Content-Type.
        mimetype = "application/octet-stream" if self.config.has("octet_stream_records") else "audio/mpeg"
        if fault is not None and fault.rate and request.method == "GET":
            data = RECORDING.read_bytes()
            slow = Response(
                trickle(data, fault.rate, self.state.stopping), mimetype=mimetype, direct_passthrough=True
            )
            slow.headers["Content-Length"] = str(len(data))
            return slow
        # conditional=True answers Range and If-None-Match requests, as a real file server does.
        response = send_file(RECORDING, request.environ, mimetype=mimetype, conditional=True, max_age=3600)
        # make_conditional stamps a Date header and the dev server adds its own: keep one.
        response.headers.pop("Date", None)
        return response

    def _record_access(self, request: Request) -> Response | None:
        """The realistic record host: a live Bearer token (§7.6), and the integration's 5 requests/s
        (§6.7) — the guide's record links are on the API host. None: go ahead."""
        if not self.config.has("records_need_token"):
            return None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        client_id = self.state.client_for_access_token(token.strip()) if scheme.lower() == "bearer" else None
        if client_id is None:
            self.state.log_request(request.method, request.path, None, 401)
            return error_response(401, "Unauthorized")
        if self.config.has("records_rate_limited") and not self.state.rate_allow(client_id):
            self.state.log_request(request.method, request.path, None, 429)
            return error_response(429, f"Too Many Requests: limit is {self.config.rate_limit} per second")
        self.state.log_request(request.method, request.path, None, 200)
        return None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except Exception:
            logger.exception("Sandbox: %s %s failed", request.method, request.path)
            response = error_response(500, "Sandbox internal error")
        return response(environ, start_response)


def create_app(config: SandboxConfig | None = None, **overrides: Any) -> SandboxApp:
    config = config or SandboxConfig()
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise TypeError(f"SandboxConfig has no field {key!r}")
        setattr(config, key, value)
    return SandboxApp(config)
