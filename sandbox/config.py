"""Configuration of the MTT PBX sandbox: credentials, lifetimes, limits and the demo directory."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any

from .quirks import MODES, check_quirks, mode_of

# Guide §8.1 asks clients to request this scope; the token endpoint answers with other strings (§8.2, §8.3).
REQUESTED_SCOPE = "https://mtt.ru/auth.tokens.readwrite"
CODE_GRANT_SCOPE = "https://mtt.ru/auth/openapi.readwrite"
REFRESH_GRANT_SCOPE = " https://mtt.ru/auth.tokens.readwrite "


def default_workplaces() -> list[dict[str, Any]]:
    return [
        {"workplace": "883140000000001", "name": "Иванова Мария"},
        {"workplace": "883140000000002", "name": "Петров Алексей"},
        {"workplace": "883140000000003", "name": "Сидорова Анна"},
    ]


def default_terminals() -> list[dict[str, Any]]:
    # A terminal's SIP ID differs from its workplace's (guide §2): makeCall must refuse terminal IDs.
    return [
        {"terminal": "883140000000101", "workplace": "883140000000001"},
        {"terminal": "883140000000102", "workplace": "883140000000002"},
        {"terminal": "883140000000103", "workplace": "883140000000003"},
        # The first employee also has the MTT mobile app (the source of duplicated notifications, §6.5).
        {"terminal": "883140000000201", "workplace": "883140000000001"},
    ]


def default_numbers() -> list[dict[str, Any]]:
    return [
        {"number": "74996497803", "type": None},
        {"number": "78005560251", "type": "8800"},
    ]


@dataclass
class Directory:
    """What the PBX's customer portal holds: workplaces, terminals and external numbers (guide §9)."""

    workplaces: list[dict[str, Any]] = field(default_factory=default_workplaces)
    terminals: list[dict[str, Any]] = field(default_factory=default_terminals)
    numbers: list[dict[str, Any]] = field(default_factory=default_numbers)

    def workplace_ids(self) -> set[str]:
        return {str(w["workplace"]) for w in self.workplaces}

    def terminal_ids(self) -> set[str]:
        return {str(t["terminal"]) for t in self.terminals}

    def number_ids(self) -> set[str]:
        return {str(n["number"]) for n in self.numbers}

    def workplace_name(self, workplace: str) -> str:
        for w in self.workplaces:
            if str(w["workplace"]) == workplace:
                return str(w.get("name") or "")
        return ""

    def copy(self) -> Directory:
        return copy.deepcopy(self)

    def as_dict(self) -> dict[str, Any]:
        return {
            "workplaces": copy.deepcopy(self.workplaces),
            "terminals": copy.deepcopy(self.terminals),
            "numbers": copy.deepcopy(self.numbers),
        }


# Fields that POST /_sandbox/config may change, with the types each accepts.
PATCHABLE: dict[str, tuple[type, ...]] = {
    "access_token_lifetime": (int,),
    "refresh_token_lifetime": (int,),
    "rate_limit": (int,),
    "notify_url": (str, type(None)),
    "notify_base": (str, type(None)),
    "public_url": (str, type(None)),
    "step_delay": (int, float),
    "auto_click_to_call": (bool,),
    "terminals_key": (str,),
    "refuse_refresh": (bool,),
    "parking_timeout": (int, float),
    "notify_timeout": (int, float),
    # Not fields: "quirks" (a list of names, sandbox/quirks.py) and "mode" ("friendly"/"realistic").
    "quirks": (list,),
    "mode": (str,),
}


@dataclass
class SandboxConfig:
    """Everything a test or the demo may want to tune. Mutable at run time through ``/_sandbox/config``."""

    host: str = "127.0.0.1"
    port: int = 8001
    client_id: str = "demo-client"
    client_secret: str = "demo-secret"
    login: str = "demo"
    password: str = "demo"
    # The control panel and /_sandbox/ (scenarios, config, logs) ask for HTTP Basic login:control_password
    # when set; the sandbox refuses to listen beyond loopback without it (manage.py mtt_sandbox). Set, the
    # sandbox is "exposed": notifications go only where the CRM that authorized it said (no notify_url of
    # a request's choosing).
    control_password: str | None = None
    access_token_lifetime: int = 7200
    refresh_token_lifetime: int = 3 * 86400
    authorization_code_lifetime: int = 600
    # Guide §6.7: 5 requests per second per integration over all API methods together.
    rate_limit: int = 5
    # Where scenario notifications go; None means the redirect_uri the client last authorized with,
    # because MTT's portal registers ONE Redirect URI for both the OAuth redirect and notifications.
    notify_url: str | None = None
    # Replaces scheme://host:port of the remembered Redirect URI: in docker compose the browser knows
    # the CRM as http://localhost:8000 but the sandbox container reaches it as http://web:8000.
    notify_base: str | None = None
    # Base of urlRecord links; None means http://host:port.
    public_url: str | None = None
    directory: Directory = field(default_factory=Directory)
    step_delay: float = 0.3
    auto_click_to_call: bool = True
    # The guide's example says "terminals_list", its table "terminalsList": tests serve both.
    terminals_key: str = "terminals_list"
    # True: every refresh_token grant answers invalid_grant (the integration must be reconnected).
    refuse_refresh: bool = False
    # Guide §10.2: a parked call waits up to 5 s for transferCall/terminateCall.
    parking_timeout: float = 5.0
    # Timeout of each notification POST to the CRM.
    notify_timeout: float = 5.0
    # What real MTT may do that the friendly sandbox does not (sandbox/quirks.py); empty: friendly.
    quirks: frozenset[str] = frozenset()

    @property
    def mode(self) -> str:
        """ "friendly" (no quirks), "realistic" (all of them) or "custom"."""
        return mode_of(self.quirks)

    @mode.setter
    def mode(self, name: str) -> None:
        if name not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        self.quirks = MODES[name]

    def has(self, quirk: str) -> bool:
        return quirk in self.quirks

    @property
    def exposed(self) -> bool:
        return bool(self.control_password)

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def patch(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply a JSON patch; raise ValueError naming the first bad key. Returns what changed."""
        for key, value in changes.items():
            allowed = PATCHABLE.get(key)
            if allowed is None:
                raise ValueError(f"unknown or read-only config key: {key}")
            # bool is an int subclass; a lifetime of `true` is a mistake, not a number.
            if isinstance(value, bool) and bool not in allowed:
                raise ValueError(f"{key} must be {' or '.join(t.__name__ for t in allowed)}")
            if not isinstance(value, allowed):
                raise ValueError(f"{key} must be {' or '.join(t.__name__ for t in allowed)}")
        if self.exposed and {"notify_url", "notify_base", "public_url"} & set(changes):
            raise ValueError(
                "where notifications and records point cannot be changed on an exposed sandbox "
                "(SANDBOX_CONTROL_PASSWORD set): they go to the CRM that authorized it"
            )
        if "mode" in changes and changes["mode"] not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if "mode" in changes and "quirks" in changes:
            raise ValueError("give mode or quirks, not both")
        quirks = check_quirks(changes["quirks"]) if "quirks" in changes else None
        for key, value in changes.items():
            setattr(self, key, quirks if key == "quirks" else value)
        return dict(changes)

    def public_dict(self) -> dict[str, Any]:
        """The config without secrets, for the control API and the index page."""
        hidden = {"client_secret", "password", "control_password", "directory"}
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in hidden}
        data["base_url"] = self.base_url
        data["quirks"] = sorted(self.quirks)
        data["mode"] = self.mode
        return data
