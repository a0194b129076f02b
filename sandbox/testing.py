"""Helpers for tests: run the sandbox (and a notification receiver) in a thread of the test process."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import requests
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from .app import SandboxApp, create_app
from .config import REQUESTED_SCOPE, SandboxConfig
from .state import SandboxState

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


@contextmanager
def _serving(app: WSGIApplication, host: str = "127.0.0.1") -> Iterator[BaseWSGIServer]:
    # Port 0: the OS picks a free port, so parallel tests never collide.
    server = make_server(host, 0, app, threaded=True)
    # A short poll interval keeps shutdown (and so every test using this) fast.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-server", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class RunningSandbox:
    url: str
    config: SandboxConfig
    state: SandboxState
    app: SandboxApp

    def control(self, method: str, name: str, payload: Any = None) -> Any:
        """Call a ``/_sandbox/<name>`` endpoint and return its JSON (raises on HTTP errors)."""
        response = requests.request(method, f"{self.url}/_sandbox/{name}", json=payload, timeout=10)
        response.raise_for_status()
        return response.json()

    def authorize(self, redirect_uri: str, state: str = "xyz", scope: str = REQUESTED_SCOPE) -> str:
        """Do the portal login like a person would and return the authorization code."""
        params = {
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "response_type": "code",
            "state": state,
        }
        form = {**params, "login": self.config.login, "password": self.config.password}
        response = requests.post(f"{self.url}/oauth/authorize", data=form, allow_redirects=False, timeout=10)
        if response.status_code != 302:
            raise AssertionError(f"login failed: {response.status_code} {response.text[:200]}")
        return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]

    def exchange(self, code: str, redirect_uri: str) -> dict[str, Any]:
        """Trade a code for tokens at the token endpoint (guide §8.2)."""
        response = requests.post(
            f"{self.url}/oauth/token",
            data={
                "grant_type": "authorization_code",
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret,
                "code": code,
                "redirect_uri": redirect_uri,
                "scope": REQUESTED_SCOPE,
            },
            timeout=10,
        )
        response.raise_for_status()
        return dict(response.json())

    def tokens(self) -> dict[str, Any]:
        """A valid token pair without HTTP (does not touch the request log)."""
        return self.state.issue_tokens()


@contextmanager
def running_sandbox(config: SandboxConfig | None = None, **overrides: Any) -> Iterator[RunningSandbox]:
    """Start the sandbox on a free port in a daemon thread; stop it when the block ends."""
    app = create_app(config, **overrides)
    with _serving(app, app.config.host) as server:
        app.config.port = server.server_port
        url = f"http://{app.config.host}:{server.server_port}"
        try:
            yield RunningSandbox(url=url, config=app.config, state=app.state, app=app)
        finally:
            app.shutdown()


@dataclass
class Receiver:
    """A stand-in for the CRM's notification URL: collects every POSTed JSON body."""

    url: str = ""
    bodies: list[Any] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    status: int = 200
    on_post: Callable[[Any], None] | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        raw = request.get_data()
        try:
            body: Any = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = None
        with self._cond:
            self.raw.append(raw)
            self.bodies.append(body)
            self.headers.append(dict(request.headers))
            self._cond.notify_all()
        if self.on_post is not None:
            self.on_post(body)
        return Response("ok", status=self.status)(environ, start_response)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        """Block until ``count`` bodies arrived; return them (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.bodies) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} notifications, got {len(self.bodies)}: {self.bodies}"
                    )
                self._cond.wait(left)
            return list(self.bodies)

    def states(self) -> list[tuple[str, str]]:
        """(call.id, state) of every call notification received, in order."""
        with self._cond:
            return [
                (b["result"]["callInfo"]["call"]["id"], b["result"]["callInfo"]["state"])
                for b in self.bodies
                if isinstance(b, dict) and b.get("event") == "callNotifications"
            ]


@contextmanager
def running_receiver(status: int = 200, on_post: Callable[[Any], None] | None = None) -> Iterator[Receiver]:
    """Serve a :class:`Receiver` on a free port; its ``.url`` can be given as the sandbox's notify URL."""
    receiver = Receiver(status=status, on_post=on_post)
    with _serving(receiver) as server:
        receiver.url = f"http://127.0.0.1:{server.server_port}/notify"
        yield receiver
