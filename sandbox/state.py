"""Thread-safe in-memory state of the sandbox: OAuth records, logs, parking, faults and the rate limiter."""

from __future__ import annotations

import copy
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .config import SandboxConfig

logger = logging.getLogger(__name__)

# The API methods of guide §9/§10; "*" in a fault means any of these (not the token endpoint).
API_PATHS = (
    "/externalNumbersInfo",
    "/workplacesInfo",
    "/terminalsinfo",
    "/setParkingNumbers",
    "/makeCall",
    "/terminateCall",
    "/transferCall",
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    # The last redirect_uri this client authorized with: the portal's single Redirect URI.
    redirect_uri: str | None = None


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    user: str
    expires_at: float
    code_challenge: str | None = None
    code_challenge_method: str | None = None


@dataclass
class IssuedToken:
    token: str
    client_id: str
    scopes: list[str]
    user: str
    expires_at: float


@dataclass
class Fault:
    """An injected failure: answer ``status`` and/or wait ``delay`` seconds first, and/or (records)
    send the body at ``rate`` bytes per second.

    It lasts ``remaining`` requests, or — with ``until`` (a ``time.monotonic()`` deadline) — every
    request until then (``remaining`` None), so a test can say "MTT answers 500 for a minute".
    ``path``: an exact path, ``"*"`` (every API method), or a prefix ending in ``*`` (``/records/*``).
    """

    path: str
    status: int | None
    remaining: int | None
    delay: float = 0.0
    until: float | None = None
    retry_after: int | None = None
    rate: int | None = None

    def matches(self, path: str) -> bool:
        if self.path == "*":
            return path in API_PATHS
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return self.path == path

    def expired(self, now: float) -> bool:
        return self.until is not None and now >= self.until

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "status": self.status,
            "count": self.remaining,
            "delay": self.delay,
        }
        if self.until is not None:
            data["seconds_left"] = round(max(0.0, self.until - time.monotonic()), 3)
        if self.retry_after is not None:
            data["retry_after"] = self.retry_after
        if self.rate is not None:
            data["rate"] = self.rate
        return data


@dataclass
class ParkedCall:
    """A parked leg waiting (guide §10.2) for transferCall/terminateCall from the CRM."""

    call_id: str
    tag: str
    event: threading.Event = field(default_factory=threading.Event)
    action: str | None = None  # "transfer" | "terminate"
    target: str | None = None  # transferCall's calleid


class SandboxState:
    """All mutable state behind one lock; every reader gets copies, never live lists."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        # Wall clock for expiries (tests may replace it); monotonic for the rate limiter.
        self.clock = time.time
        self.stopping = threading.Event()
        self.clients: dict[str, OAuthClient] = {
            config.client_id: OAuthClient(config.client_id, config.client_secret)
        }
        self.codes: dict[str, AuthCode] = {}
        self.access_tokens: dict[str, IssuedToken] = {}
        self.refresh_tokens: dict[str, IssuedToken] = {}
        self.last_redirect_uri: str | None = None
        self.parking: dict[str, bool] = {}
        self.requests: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.record_downloads: list[str] = []
        # Call-ID -> tag of every leg the sandbox announced, to tell whether commands echo them exactly.
        self.legs: dict[str, str] = {}
        # Call-IDs of legs that are over (finished, or parked and routed): no command reaches them.
        self.ended_legs: set[str] = set()
        self.parked: dict[str, ParkedCall] = {}
        self.faults: list[Fault] = []
        self._rate: dict[str, deque[float]] = {}

    # --- OAuth -----------------------------------------------------------------------------------

    def remember_redirect_uri(self, client_id: str, redirect_uri: str) -> None:
        with self.lock:
            client = self.clients.get(client_id)
            if client is not None:
                client.redirect_uri = redirect_uri
            self.last_redirect_uri = redirect_uri

    def issue_tokens(self, client_id: str | None = None, scopes: list[str] | None = None) -> dict[str, Any]:
        """Mint an access/refresh pair without the HTTP dance, for tests that only need a valid token."""
        client_id = client_id or self.config.client_id
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        with self.lock:
            self.access_tokens[access] = IssuedToken(
                access,
                client_id,
                list(scopes or []),
                self.config.login,
                now + self.config.access_token_lifetime,
            )
            self.refresh_tokens[refresh] = IssuedToken(
                refresh,
                client_id,
                list(scopes or []),
                self.config.login,
                now + self.config.refresh_token_lifetime,
            )
        return {
            "access_token": access,
            "expires_in": self.config.access_token_lifetime,
            "refresh_token": refresh,
        }

    def client_for_access_token(self, token: str) -> str | None:
        """The client owning a live access token, or None when unknown or expired."""
        with self.lock:
            record = self.access_tokens.get(token)
            if record is None or record.expires_at <= self.clock():
                return None
            return record.client_id

    def revoke_access_tokens(self, client_id: str, *, keep: str) -> int:
        """End every access token of ``client_id`` but ``keep`` (the refresh_revokes_tokens quirk)."""
        with self.lock:
            old = [t for t, r in self.access_tokens.items() if r.client_id == client_id and t != keep]
            for token in old:
                del self.access_tokens[token]
            return len(old)

    def expire_access_tokens(self) -> int:
        with self.lock:
            past = self.clock() - 1
            for record in self.access_tokens.values():
                record.expires_at = past
            return len(self.access_tokens)

    # --- notify URL ------------------------------------------------------------------------------

    def notify_url(self, override: str | None = None) -> str | None:
        with self.lock:
            url = override or self.config.notify_url or self.last_redirect_uri
            base = self.config.notify_base
        if url and base and not override:
            parts = urlsplit(url)
            url = base.rstrip("/") + urlunsplit(("", "", parts.path, parts.query, ""))
        return url

    # --- logs ------------------------------------------------------------------------------------

    def log_request(self, method: str, path: str, body: Any, status: int) -> None:
        entry = {"method": method, "path": path, "json": body, "time": now_iso(), "status": status}
        with self.lock:
            self.requests.append(entry)

    def requests_snapshot(self, path: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            items = [r for r in self.requests if path is None or r["path"] == path]
            return copy.deepcopy(items)

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def record_notification(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.notifications.append(entry)

    def notifications_snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.notifications)

    def clear_notifications(self) -> None:
        with self.lock:
            self.notifications.clear()

    def record_command(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.commands.append(entry)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "notify_url": self.notify_url(),
                "parking": dict(self.parking),
                "calls": copy.deepcopy(self.calls),
                "commands": copy.deepcopy(self.commands),
                "faults": [f.as_dict() for f in self.faults],
                "record_downloads": list(self.record_downloads),
                "access_tokens": len(self.access_tokens),
                "refresh_tokens": len(self.refresh_tokens),
                "parked_now": sorted(self.parked),
            }

    # --- faults ----------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_fault(self, path: str) -> Fault | None:
        """Consume one use of the first live fault matching ``path`` (expired ones are dropped)."""
        now = time.monotonic()
        with self.lock:
            self.faults = [f for f in self.faults if not f.expired(now)]
            for fault in self.faults:
                if fault.matches(path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self.faults.remove(fault)
                    return Fault(
                        fault.path,
                        fault.status,
                        1,
                        fault.delay,
                        retry_after=fault.retry_after,
                        rate=fault.rate,
                    )
        return None

    # --- rate limit ------------------------------------------------------------------------------

    def rate_allow(self, client_id: str) -> bool:
        """Sliding one-second window: admit at most ``rate_limit`` requests; refused ones do not count."""
        now = time.monotonic()
        with self.lock:
            window = self._rate.setdefault(client_id, deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self.config.rate_limit:
                return False
            window.append(now)
            return True

    def reset_rate(self) -> None:
        with self.lock:
            self._rate.clear()

    # --- legs and parking ------------------------------------------------------------------------

    def announce_leg(self, call_id: str, tag: str) -> None:
        with self.lock:
            self.legs[call_id] = tag

    def leg_matches(self, call_id: str, tag: str) -> bool:
        with self.lock:
            return self.legs.get(call_id) == tag

    def end_leg(self, call_id: str) -> None:
        with self.lock:
            self.ended_legs.add(call_id)

    def leg_live(self, call_id: str, tag: str) -> bool:
        """Announced with this exact tag and not over yet."""
        with self.lock:
            return self.legs.get(call_id) == tag and call_id not in self.ended_legs

    def park(self, call_id: str, tag: str) -> ParkedCall:
        parked = ParkedCall(call_id, tag)
        with self.lock:
            self.parked[call_id] = parked
        return parked

    def unpark(self, call_id: str) -> None:
        with self.lock:
            self.parked.pop(call_id, None)

    def resolve_parked(self, call_id: str, tag: str, action: str, target: str | None = None) -> bool:
        """Hand a CRM command to the scenario waiting on that parked leg, if id and tag match exactly."""
        with self.lock:
            parked = self.parked.get(call_id)
            if parked is None or parked.tag != tag or parked.event.is_set():
                return False
            parked.action, parked.target = action, target
            parked.event.set()
            return True

    def is_parking(self, number: str) -> bool:
        with self.lock:
            return self.parking.get(number, False)
