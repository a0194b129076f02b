"""Smart routing of parked calls: sending the decided command (transferCall / terminateCall) to MTT.

``routing_dispatch`` runs after the apply's commit (calls.services) and hands the plan to a small thread
pool of the applier process, so the applier goes on applying while the command waits for its permit and
MTT's answer. A Celery task would be durable, but durability buys nothing here: a command is worthless after
MTT's 5 s and the PBX routes the call by itself when none comes; the pool skips the broker hop. The command
goes through ``MttClient`` and the shared 5 req/s limiter, with a priority permit.

``routing_send`` (in a pool thread) claims the decision (a conditional update: one sender per decision),
sends, records what MTT answered. If MTT refuses the transfer (4xx), the leg is released with
``terminateCall``. The HTTP session checks the deadline once more right before the request leaves (after
the limiter's wait).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from django.db import close_old_connections
from django.utils import timezone

from integrations.mtt.client import MttClient
from integrations.mtt.errors import (
    MttAuthError,
    MttBadResponse,
    MttError,
    MttPermanentError,
    MttRateLimited,
    MttTransientError,
)

from ..models import RoutingDecision
from .decide import Plan, ms_between

logger = logging.getLogger(__name__)

Decision = RoutingDecision.Decision
Reason = RoutingDecision.Reason
TRANSFER, TERMINATE = "transferCall", "terminateCall"
# Threads per process sending routing commands: a parked call's command waits for a permit of MTT's 5 req/s
# and for MTT's answer; a few threads keep a burst of parked calls from queueing behind one another.
SENDER_THREADS = 4


_executor_lock = threading.Lock()
_executor_state: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    global _executor_state
    with _executor_lock:
        # Keyed by pid: a forked Celery child must not use its parent's (threadless) pool.
        if _executor_state is None or _executor_state[0] != os.getpid():
            pool = ThreadPoolExecutor(max_workers=SENDER_THREADS, thread_name_prefix="routing")
            _executor_state = (os.getpid(), pool)
        return _executor_state[1]


def routing_pool_shutdown() -> None:
    """Stop this process's sender threads after the commands in flight (tests, a clean exit).

    Their database connections go with the threads; nothing else holds them.
    """
    global _executor_state
    with _executor_lock:
        state, _executor_state = _executor_state, None
    if state is not None and state[0] == os.getpid():
        state[1].shutdown(wait=True)
        gc.collect()


def routing_dispatch(plan: Plan) -> None:
    """After commit: start sending what ``routing_decide`` decided, without waiting for it."""
    _executor().submit(_send_in_worker, plan)


def _send_in_worker(plan: Plan) -> None:
    close_old_connections()
    try:
        routing_send(plan=plan)
    except Exception:
        logger.exception("Routing: sending decision %s failed", plan.decision_id)
    finally:
        close_old_connections()


# --- Sending -------------------------------------------------------------------------------------------


class DeadlinePassed(requests.RequestException):
    """Raised by the session instead of sending: the command would reach MTT too late."""


class DeadlineSession(requests.Session):
    """The HTTP session routing commands use: the last check happens here, after the limiter's wait.

    MttClient wraps a ``requests`` exception into ``MttTransientError`` (``__cause__`` kept), so a
    dropped command comes back as an error whose cause is ``DeadlinePassed``.
    """

    deadline: datetime | None = None
    sent_at: datetime | None = None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent_at = None
        if self.deadline is not None:
            left = (self.deadline - timezone.now()).total_seconds()
            if left <= 0:
                raise DeadlinePassed(f"deadline passed {-left:.3f} s ago")
            timeout = kwargs.get("timeout")
            if isinstance(timeout, tuple):
                connect, read = timeout
                # A connection slower than what is left would deliver the command too late.
                kwargs["timeout"] = (min(connect, max(left, 0.05)), min(read, left + 1.0))
        self.sent_at = timezone.now()
        return super().request(method, url, *args, **kwargs)


_sessions = threading.local()


def _session(deadline: datetime) -> DeadlineSession:
    # One session per thread: keep-alive to MTT (no TLS handshake per command), never shared.
    session: DeadlineSession | None = getattr(_sessions, "session", None)
    if session is None:
        session = DeadlineSession()
        _sessions.session = session
    session.deadline = deadline
    return session


@dataclass
class Sent:
    ok: bool
    command: str
    sent_at: datetime | None = None
    answer: str = ""
    refused: bool = False
    too_late: bool = False


def _command(plan: Plan, command: str) -> Sent:
    """Send one command before the deadline; a limiter refusal or a 429 waits and tries again."""
    session = _session(plan.deadline)
    client = MttClient(plan.integration, session=session)
    while True:
        session.sent_at = None
        try:
            if command == TRANSFER:
                client.transfer_call(
                    call_id=plan.call_id,
                    tag=plan.tag,
                    callee=plan.target_sip_id,
                    transport_id=plan.transport_id,
                    priority=True,
                )
            else:
                client.terminate_call(
                    call_id=plan.call_id, tag=plan.tag, transport_id=plan.transport_id, priority=True
                )
            return Sent(True, command, session.sent_at, "success")
        except MttRateLimited as exc:
            # Our limiter found no permit within its priority wait, or MTT answered 429 (nothing done).
            left = (plan.deadline - timezone.now()).total_seconds()
            if exc.retry_after >= left:
                return Sent(
                    False, command, None, f"no permit before the deadline ({exc.message})", too_late=True
                )
            time.sleep(max(0.001, exc.retry_after))
        except MttTransientError as exc:
            if isinstance(exc.__cause__, DeadlinePassed):
                return Sent(False, command, None, "deadline passed before sending", too_late=True)
            return Sent(False, command, session.sent_at, exc.message)
        except MttBadResponse as exc:
            # HTTP 2xx with a body we cannot read: MTT took the command, most likely.
            return Sent(True, command, session.sent_at, f"success? unreadable answer ({exc.message})")
        except MttAuthError as exc:
            # No usable token: nothing was sent and nothing else will be.
            return Sent(False, command, session.sent_at, exc.user_message)
        except MttPermanentError as exc:
            return Sent(False, command, session.sent_at, exc.user_message, refused=True)
        except MttError as exc:
            return Sent(False, command, session.sent_at, exc.message)


def routing_send(*, plan: Plan) -> str | None:
    """Send a decided command (once: the decision is claimed first); return the final decision."""
    claimed = RoutingDecision.objects.filter(pk=plan.decision_id, claimed_at__isnull=True).update(
        claimed_at=timezone.now()
    )
    if claimed != 1:
        return None
    changes: dict[str, Any] = {}
    if plan.decision == Decision.TRANSFER:
        first = _command(plan, TRANSFER)
        sent = [first]
        if first.refused:
            # MTT refused the transfer (a wrong target, the leg gone to a workplace that cannot take
            # it): release the caller at once rather than leave them parked.
            logger.info(
                "Routing: transfer of decision %s refused (%s); releasing", plan.decision_id, first.answer
            )
            sent.append(_command(plan, TERMINATE))
            changes["reason"] = Reason.TRANSFER_REFUSED
    else:
        sent = [_command(plan, TERMINATE)]
    last = sent[-1]
    if last.ok:
        final = Decision.RELEASE if last.command == TERMINATE else Decision.TRANSFER
    elif last.too_late:
        final = Decision.TOO_LATE
    else:
        final = Decision.FAILED
    sent_at = next((s.sent_at for s in reversed(sent) if s.sent_at is not None), None)
    changes.update(
        decision=final,
        sent_at=sent_at,
        latency_ms=ms_between(sent_at - plan.received_at) if sent_at else None,
        command=" + ".join(s.command for s in sent if s.sent_at is not None),
        mtt_answer="; ".join(f"{s.command}: {s.answer}" for s in sent),
    )
    RoutingDecision.objects.filter(pk=plan.decision_id).update(**changes)
    log = logger.info if final in (Decision.TRANSFER, Decision.RELEASE) else logger.warning
    log(
        "Routing: decision %s %s in %s ms (%s)",
        plan.decision_id,
        final,
        changes["latency_ms"],
        changes["mtt_answer"],
    )
    return final
