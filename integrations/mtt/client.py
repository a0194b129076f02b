"""The MTT Open API client: the ONLY place that talks HTTP to the API methods (API.md "API methods").

Every request: a permit from the shared 5 req/s limiter (``ratelimit``) in its method's class (routing
commands first, then makeCall, then the directory reads and setParkingNumbers), the Bearer token from
``integration_access_token`` (refreshed first when about to expire), timeouts
``(MTT_CONNECT_TIMEOUT, MTT_READ_TIMEOUT)``, one ``MttRequestLog`` row, and typed errors:

* network errors, timeouts, 5xx → ``MttTransientError``; 429 → ``MttRateLimited`` (and every process
  holds off for Retry-After); 401 → one single-flight refresh and one retry, then ``MttAuthError``;
  other 4xx, or ``success`` not 1 → ``MttPermanentError`` carrying MTT's answer; a 2xx we cannot
  read → ``MttBadResponse``.

Retries (backoff with jitter) only where repeating is harmless: the three reads and setParkingNumbers
(idempotent). makeCall is never repeated — a second makeCall rings the client's phone a second time,
and after a timeout we cannot know whether the first one went through. terminateCall/transferCall are
not repeated either: they are useful only within the 5 s of parking, so the caller decides.

Token values never reach a log line, an error message or ``MttRequestLog``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from monitoring import metrics

from ..models import Integration, MttRequestLog
from ..tokens import integration_access_token, integration_refresh_tokens
from . import ratelimit
from .errors import (
    MttAuthError,
    MttBadResponse,
    MttError,
    MttPermanentError,
    MttRateLimited,
    MttTransientError,
    mtt_error_text,
)
from .ratelimit import Priority

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_ATTEMPTS = 3
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 4.0
# A routing command must reach MTT within the 5 s of parking (API.md "Parking and smart routing"):
# waiting longer than this for a permit is pointless, better fail and let the PBX route by itself.
PRIORITY_MAX_WAIT = 3.0
DEFAULT_RETRY_AFTER = 1.0


@dataclass(frozen=True)
class ExternalNumberInfo:
    number: str
    type: str | None


@dataclass(frozen=True)
class WorkplaceInfo:
    sip_id: str
    name: str


@dataclass(frozen=True)
class TerminalInfo:
    sip_id: str
    workplace_sip_id: str


def _backoff(attempt: int) -> float:
    """Equal jitter: half the exponential delay fixed, half random (attempt counts from 1)."""
    delay = min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2 ** (attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - not cryptographic


def _retry_after(response: requests.Response) -> float:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); 1 s when absent or odd."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return DEFAULT_RETRY_AFTER
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    return max(0.0, (when - timezone.now()).total_seconds())


def _body(response: requests.Response) -> Any:
    """The parsed JSON body, else the text (cut short) — for errors."""
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def _success(value: Any) -> bool:
    # API.md: "success": 1 in every example; accept true as well, and the strings of both.
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true"}
    return value is True or (isinstance(value, int) and value == 1)


def _as_str(value: Any) -> str:
    # Identifiers are strings in the guide; a number that arrives as a JSON number keeps its digits.
    return value if isinstance(value, str) else str(value)


class _Unauthorized(Exception):
    """HTTP 401 (internal: answered by one refresh and one retry)."""

    def __init__(self, body: Any) -> None:
        super().__init__("HTTP 401")
        self.body = body


class MttClient:
    """Typed methods for the MTT Open API of one integration."""

    def __init__(self, integration: Integration, *, session: requests.Session | None = None) -> None:
        self.integration = integration
        self.session = session or requests.Session()
        # Injectable so tests do not sleep through the backoff.
        self.sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"MttClient(integration={self.integration.pk})"

    # --- API methods (API.md "API methods") -------------------------------------------------------

    def external_numbers_info(self) -> list[ExternalNumberInfo]:
        return self._call(
            "externalNumbersInfo", "GET", retry=True, priority=Priority.SYNC, parse=_parse_numbers
        )

    def workplaces_info(self) -> list[WorkplaceInfo]:
        return self._call(
            "workplacesInfo", "GET", retry=True, priority=Priority.SYNC, parse=_parse_workplaces
        )

    def terminals_info(self) -> list[TerminalInfo]:
        return self._call("terminalsinfo", "GET", retry=True, priority=Priority.SYNC, parse=_parse_terminals)

    def set_parking_numbers(self, numbers: Sequence[str], *, is_parking: bool) -> None:
        if isinstance(numbers, str):
            raise TypeError("numbers must be a sequence of numbers, not one string")
        if not numbers:
            return
        payload = {"params": {"numbers": list(numbers), "isParking": bool(is_parking)}}
        self._call(
            "setParkingNumbers",
            "POST",
            payload=payload,
            retry=True,
            priority=Priority.SYNC,
            parse=_require_success,
        )

    def make_call(self, *, caller_id: str, callee: str) -> str:
        # API.md: the key is "calleid" (the provider's spelling); callerId is a workplace SIP ID.
        payload = {"params": {"callerId": caller_id, "calleid": callee}}
        return self._call(
            "makeCall",
            "POST",
            payload=payload,
            retry=False,
            priority=Priority.CLICK_TO_CALL,
            parse=_parse_call_id,
        )

    def terminate_call(
        self, *, call_id: str, tag: str, transport_id: str, priority: Priority | bool = Priority.ROUTING
    ) -> None:
        # id and tag are echoed byte for byte: the guide's own tag holds a Cyrillic letter (API.md).
        payload = {"params": {"call": {"id": call_id, "tag": tag}, "transportId": transport_id}}
        self._call(
            "terminateCall", "POST", payload=payload, retry=False, priority=priority, parse=_require_success
        )

    def transfer_call(
        self,
        *,
        call_id: str,
        tag: str,
        callee: str,
        transport_id: str,
        priority: Priority | bool = Priority.ROUTING,
    ) -> None:
        # API.md: the guide's example writes " calleid " with spaces, a typo; the key is "calleid".
        payload = {
            "params": {"call": {"id": call_id, "tag": tag}, "calleid": callee, "transportId": transport_id}
        }
        self._call(
            "transferCall", "POST", payload=payload, retry=False, priority=priority, parse=_require_success
        )

    # --- Transport ------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        http_method: str,
        *,
        parse: Callable[[str, dict[str, Any]], T],
        payload: dict[str, Any] | None = None,
        retry: bool,
        priority: Priority | bool,
    ) -> T:
        """Send one API call (with the retries the method allows); return what ``parse`` made of it."""
        attempts = RETRY_ATTEMPTS if retry else 1
        attempt = 1
        klass = ratelimit.as_priority(priority)
        while True:
            try:
                return self._authorized(method, http_method, payload, klass, parse)
            except MttError as exc:
                # The limiter and the token services do not know which API method was meant.
                if exc.method in ("", "ratelimit"):
                    exc.method = method
                # MttRateLimited: the wait was honoured already (limiter) or is the caller's (429).
                if not isinstance(exc, MttTransientError) or isinstance(exc, MttRateLimited):
                    raise
                if attempt >= attempts:
                    raise
                delay = _backoff(attempt)
                logger.info(
                    "MTT %s failed (%s), attempt %d of %d; retrying in %.2f s",
                    method,
                    exc.message,
                    attempt,
                    attempts,
                    delay,
                )
                self.sleep(delay)
                attempt += 1

    def _authorized(
        self,
        method: str,
        http_method: str,
        payload: dict[str, Any] | None,
        priority: Priority,
        parse: Callable[[str, dict[str, Any]], T],
    ) -> T:
        token = self._note_token(integration_access_token(integration=self.integration))
        try:
            return self._exchange(method, http_method, payload, token, priority, parse)
        except _Unauthorized:
            # API.md "OAuth": an expired access token gets 401. Refresh once (single-flight across
            # processes: whoever refreshed first wins, the others reuse its token) and retry once.
            # Safe even for makeCall: a request refused with 401 placed no call.
            logger.info("MTT %s answered 401; refreshing the access token", method)
        token = self._note_token(
            integration_refresh_tokens(integration_id=self.integration.pk, stale_access_token=token)
        )
        try:
            return self._exchange(method, http_method, payload, token, priority, parse)
        except _Unauthorized as exc:
            raise MttAuthError(
                "MTT refused a freshly refreshed access token", method=method, status_code=401, body=exc.body
            ) from None

    def _note_token(self, token: str) -> str:
        if token != self.integration.access_token:
            # Someone refreshed: reload so the next call does not start from the stale token.
            self.integration.refresh_from_db(
                fields=["access_token", "access_token_expires_at", "refresh_token", "status"]
            )
        return token

    def _exchange(
        self,
        method: str,
        http_method: str,
        payload: dict[str, Any] | None,
        token: str,
        priority: Priority,
        parse: Callable[[str, dict[str, Any]], T],
    ) -> T:
        """One HTTP request: a permit, the request, the answer read; one MttRequestLog row."""
        routing = priority is Priority.ROUTING
        max_wait = min(settings.MTT_RATE_LIMIT_MAX_WAIT, PRIORITY_MAX_WAIT) if routing else None
        waited = ratelimit.acquire(self.integration.pk, priority=priority, max_wait=max_wait)
        url = self.integration.api_url.rstrip("/") + "/" + method
        started = time.monotonic()
        status: int | None = None
        error = ""
        try:
            try:
                response = self.session.request(
                    http_method,
                    url,
                    # requests sends json= as UTF-8 JSON: strings (Cyrillic tags too) decode unchanged.
                    json=payload,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                    timeout=(settings.MTT_CONNECT_TIMEOUT, settings.MTT_READ_TIMEOUT),
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                raise MttTransientError(f"MTT request failed: {type(exc).__name__}", method=method) from exc
            status = response.status_code
            if status == 401:
                raise _Unauthorized(_body(response))
            return parse(method, self._read(method, response))
        except (MttError, _Unauthorized) as exc:
            error = exc.message if isinstance(exc, MttError) else "HTTP 401"
            logger.warning(
                "MTT %s failed: %s",
                method,
                error,
                extra={"integration_id": self.integration.pk, "mtt_method": method, "status": status},
            )
            raise
        except Exception as exc:
            error = f"unexpected {type(exc).__name__}"
            raise
        finally:
            duration = time.monotonic() - started
            logger.debug("MTT %s -> %s in %.0f ms", method, status, duration * 1000)
            self._log(method, status, error=error, duration=duration, waited=waited)

    def _read(self, method: str, response: requests.Response) -> dict[str, Any]:
        """The JSON object of a 2xx answer; a typed error for anything else."""
        status = response.status_code
        if status == 429:
            retry_after = _retry_after(response)
            ratelimit.penalize(self.integration.pk, retry_after)
            raise MttRateLimited(
                "MTT answered 429 Too Many Requests",
                retry_after=retry_after,
                method=method,
                status_code=status,
                body=_body(response),
            )
        if status >= 500:
            raise MttTransientError(
                f"MTT answered HTTP {status}", method=method, status_code=status, body=_body(response)
            )
        if status >= 400:
            raise MttPermanentError(
                f"MTT refused {method} with HTTP {status}",
                method=method,
                status_code=status,
                body=_body(response),
            )
        if status >= 300:
            raise MttBadResponse(f"MTT answered HTTP {status}", method=method, status_code=status)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise MttBadResponse(
                f"MTT answered {method} with something other than a JSON object",
                method=method,
                status_code=status,
                body=response.text[:500],
            )
        if "error" in body and "result" not in body and "success" not in body:
            # An error object with HTTP 200: MTT refused, whatever the status line says.
            raise MttPermanentError(
                f"MTT refused {method}: {mtt_error_text(body)}", method=method, status_code=status, body=body
            )
        return body

    def _log(self, method: str, status: int | None, *, error: str, duration: float, waited: float) -> None:
        """One MttRequestLog row per request; best effort, never fails the request."""
        metrics.mtt_request(method=method, status_code=status, duration=duration, waited=waited)
        try:
            # A savepoint: a failed insert must not break a transaction the caller has open.
            with transaction.atomic():
                MttRequestLog.objects.create(
                    integration_id=self.integration.pk,
                    method=method,
                    status_code=status,
                    ok=not error,
                    error=error[:500],
                    duration_ms=max(0, int(duration * 1000)),
                    limiter_wait_ms=max(0, int(waited * 1000)),
                )
        except Exception:
            logger.warning("Could not write MttRequestLog for %s", method, exc_info=True)


# --- Response shapes (API.md "API methods") -----------------------------------------------------------


def _result(method: str, body: dict[str, Any]) -> dict[str, Any]:
    result = body.get("result")
    if not isinstance(result, dict):
        raise MttBadResponse(f"{method} answered without a result object", method=method, body=body)
    return result


def _items(
    method: str, body: dict[str, Any], list_keys: tuple[str, ...], id_keys: tuple[str, ...]
) -> list[dict[str, Any]]:
    result = _result(method, body)
    for key in list_keys:
        if result.get(key) is not None:
            items = result[key]
            break
    else:
        if result.get("total") in (0, "0"):
            return []
        missing = "/".join(list_keys)
        raise MttBadResponse(f"{method} answered without {missing}", method=method, body=result)
    # Fail loudly rather than skip: the directory sync marks whatever is missing as gone.
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and any(item.get(k) not in (None, "") for k in id_keys) for item in items
    ):
        raise MttBadResponse(f"{method} answered a list we cannot read", method=method, body=result)
    return items


def _parse_numbers(method: str, body: dict[str, Any]) -> list[ExternalNumberInfo]:
    return [
        ExternalNumberInfo(
            number=_as_str(item["number"]),
            type=None if item.get("type") is None else _as_str(item["type"]),
        )
        for item in _items(method, body, ("numbersList",), ("number",))
    ]


def _parse_workplaces(method: str, body: dict[str, Any]) -> list[WorkplaceInfo]:
    return [
        WorkplaceInfo(sip_id=_as_str(item["workplace"]), name=_as_str(item.get("name") or ""))
        for item in _items(method, body, ("workplacesList",), ("workplace",))
    ]


def _parse_terminals(method: str, body: dict[str, Any]) -> list[TerminalInfo]:
    # API.md: terminalsinfo says terminalsList, its example terminals_list, its table "terminale".
    terminals = []
    for item in _items(method, body, ("terminalsList", "terminals_list"), ("terminal", "terminale")):
        sip_id = item["terminal"] if item.get("terminal") not in (None, "") else item["terminale"]
        terminals.append(
            TerminalInfo(sip_id=_as_str(sip_id), workplace_sip_id=_as_str(item.get("workplace") or ""))
        )
    return terminals


def _require_success(method: str, body: dict[str, Any]) -> dict[str, Any]:
    # API.md: responses come as {"result": {...}}; setParkingNumbers' example is a bare {"success": 1}.
    result = body.get("result", body)
    if not isinstance(result, dict):
        raise MttBadResponse(f"{method} answered without a result object", method=method, body=body)
    if not _success(result.get("success")):
        raise MttPermanentError(
            f"MTT did not carry out {method} (success={result.get('success')!r})",
            method=method,
            status_code=200,
            body=result if mtt_error_text(result) else body,
        )
    return result


def _parse_call_id(method: str, body: dict[str, Any]) -> str:
    call = _require_success(method, body).get("call")
    call_id = call.get("id") if isinstance(call, dict) else None
    # An id sent as a JSON integer is its digits (like the notifications' call.id).
    if isinstance(call_id, int) and not isinstance(call_id, bool):
        call_id = str(call_id)
    if not isinstance(call_id, str) or not call_id:
        raise MttBadResponse(f"{method} answered without result.call.id", method=method, body=body)
    return call_id


def client_for(integration_id: int) -> MttClient:
    """A client over a freshly read Integration (for tasks, which take ids)."""
    return MttClient(Integration.objects.get(pk=integration_id))
