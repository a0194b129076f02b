"""Smart routing of parked calls (guide §5.4, §10.2; API.md "Parking and smart routing").

An incoming call to an external number with parking on waits up to 5 s at the PBX. On the parked leg's
``trying`` we decide at once:

- the caller's contact has a personal manager with a workplace in this PBX who is not on a live call →
  ``transferCall`` the parked leg (its ``call.id``, ``tag`` and ``transportId`` exactly as received) to the
  manager's workplace SIP ID;
- otherwise (unknown client, no manager, manager without a workplace or busy, a blocklisted number,
  outside ``ROUTING_HOURS``) → ``terminateCall`` the parked leg, which releases it to the PBX's own
  routing at once instead of after 5 s.

Where each step runs:

1. ``routing_decide`` — an IN_TRANSACTION hook of ``calls.services``: decides and records a
   ``RoutingDecision`` (unique per leg: a duplicate ``trying`` decides nothing twice) with the call.
2. ``routing_dispatch`` — an ON_COMMIT hook: hands the command to a small thread pool of this process
   (``ROUTING_WORKERS``) and returns. The notify URL applies notifications inline in its request, and
   Daphne runs a process's synchronous views on one thread, so sending from the hook itself would hold
   that thread for the MTT round trip and the limiter wait (up to seconds in a burst). A Celery task on
   its own queue would be durable, but durability buys nothing here: a command is worthless after 5 s
   and the PBX routes the call by itself when none comes; the pool skips the broker hop (the embedded
   filesystem broker polls every 50 ms) and needs no extra worker to deploy. The command still goes
   through ``MttClient`` and the shared 5 req/s limiter, with a priority permit.
3. ``routing_send`` — in a pool thread: claims the decision (a conditional update), sends, records
   what MTT answered. If MTT refuses the transfer (4xx), the leg is released with ``terminateCall``.

No command leaves later than ``ROUTING_DEADLINE_SECONDS`` (4.5 s) after the notification arrived
(``NotificationEvent.received_at``): the deadline is checked when deciding, and again by the HTTP
session right before the request leaves (after the limiter's wait) — past it the command is dropped and
the decision recorded as *too late*: a later command would act on a call MTT has routed already.

Parking itself is switched per external number in the admin (``external_numbers_set_parking``: our
``is_parking`` changes only after MTT confirmed) and re-applied after every (re)connection
(``routing_reapply_parking``, an ON_CONNECT hook of ``integrations.services``).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import Prefetch, Q
from django.utils import timezone

from contacts.models import Contact
from contacts.phones import normalize
from integrations.models import ExternalNumber, Integration, Workplace
from integrations.mtt.client import MttClient
from integrations.mtt.errors import (
    MttAuthError,
    MttBadResponse,
    MttError,
    MttPermanentError,
    MttRateLimited,
    MttTransientError,
)
from integrations.mtt.notifications import Envelope

from .models import Call, CallLeg, Direction, RoutingDecision
from .services import bare_number

if TYPE_CHECKING:
    from .services import AppliedNotification

logger = logging.getLogger(__name__)

Decision = RoutingDecision.Decision
Reason = RoutingDecision.Reason

# A live call nobody heard of for this long lost its last notifications: it does not make anyone busy.
BUSY_MAX_AGE = timedelta(hours=12)
TRANSFER, TERMINATE = "transferCall", "terminateCall"


# --- Deciding (inside the call's transaction) ----------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    decision: str  # Decision.TRANSFER | Decision.RELEASE
    reason: str
    manager: Any = None
    workplace: Workplace | None = None


@dataclass(frozen=True)
class Plan:
    """Everything the sender needs, built before commit (no query needed to send)."""

    decision_id: int
    integration: Integration
    decision: str
    call_id: str
    tag: str
    transport_id: str
    target_sip_id: str
    received_at: datetime
    deadline: datetime


def _person(user: Any) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else ""


def _blocklist() -> set[str]:
    return {normalize(n) or n.strip() for n in settings.ROUTING_BLOCKLIST if n.strip()}


def _parse_hours(value: str) -> tuple[dtime, dtime] | None:
    try:
        start, end = (dtime.fromisoformat(part.strip()) for part in value.split("-", 1))
    except ValueError:
        logger.warning("ROUTING_HOURS=%r is not HH:MM-HH:MM; routing at all hours", value)
        return None
    return start, end


def within_hours(now: datetime) -> bool:
    """Whether ``now`` is inside ROUTING_HOURS (TIME_ZONE, every day; "22:00-06:00" spans midnight)."""
    value = settings.ROUTING_HOURS.strip()
    hours = _parse_hours(value) if value else None
    if hours is None:
        return True
    start, end = hours
    moment = timezone.localtime(now).time()
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end


def manager_is_busy(*, manager_id: int, workplace_id: int, call_id: int, now: datetime) -> bool:
    """On a live call (talking, or a leg ringing at their workplace) other than this one."""
    fresh = now - BUSY_MAX_AGE
    if (
        Call.objects.filter(status__in=Call.LIVE_STATUSES, updated_at__gte=fresh)
        .filter(Q(operator_id=manager_id) | Q(workplace_id=workplace_id))
        .exclude(pk=call_id)
        .exists()
    ):
        return True
    return (
        CallLeg.objects.filter(
            workplace_id=workplace_id,
            finished_at__isnull=True,
            hidden_at__isnull=True,
            call__status__in=Call.LIVE_STATUSES,
            call__updated_at__gte=fresh,
        )
        .exclude(call_id=call_id)
        .exists()
    )


def routing_choose(*, call: Call, now: datetime) -> Choice:
    """Where the parked call goes, and why (the rules of the module docstring)."""
    if call.client_number and call.client_number in _blocklist():
        return Choice(Decision.RELEASE, Reason.BLOCKLIST)
    if not within_hours(now):
        return Choice(Decision.RELEASE, Reason.OUTSIDE_HOURS)
    contact = (
        Contact.objects.select_related("personal_manager").filter(pk=call.contact_id).first()
        if call.contact_id
        else None
    )
    if contact is None:
        return Choice(Decision.RELEASE, Reason.UNKNOWN_CLIENT)
    manager = contact.personal_manager
    if manager is None or not manager.is_active:
        # A contact the call itself created a moment ago is nobody we know.
        unknown = contact.source == Contact.Source.CALL and not contact.name and not contact.company
        return Choice(Decision.RELEASE, Reason.UNKNOWN_CLIENT if unknown else Reason.NO_MANAGER)
    workplace = Workplace.objects.filter(
        user_id=manager.pk, integration_id=call.integration_id, is_active=True
    ).first()
    if workplace is None:
        return Choice(Decision.RELEASE, Reason.MANAGER_NO_WORKPLACE, manager=manager)
    if manager_is_busy(manager_id=manager.pk, workplace_id=workplace.pk, call_id=call.pk, now=now):
        return Choice(Decision.RELEASE, Reason.MANAGER_BUSY, manager=manager, workplace=workplace)
    return Choice(Decision.TRANSFER, Reason.MANAGER_FREE, manager=manager, workplace=workplace)


_PLANS: weakref.WeakKeyDictionary[AppliedNotification, Plan] = weakref.WeakKeyDictionary()
_PLANS_LOCK = threading.Lock()


def routing_decide(applied: AppliedNotification) -> None:
    """IN_TRANSACTION hook: decide on a parked leg's ``trying`` and record it (never fails the apply)."""
    info, leg, call = applied.info, applied.leg, applied.call
    if info.state != "trying" or not leg.is_line_leg or leg.direction != Direction.INCOMING:
        return
    if call.line_id is None:
        return
    try:
        with transaction.atomic():  # a savepoint: a failure here must not undo the call
            plan = _decide(applied, line_id=call.line_id)
    except Exception:
        logger.warning("Routing: deciding on call %s failed", call.pk, exc_info=True)
        return
    if plan is not None:
        with _PLANS_LOCK:
            _PLANS[applied] = plan


def _decide(applied: AppliedNotification, *, line_id: int) -> Plan | None:
    info, leg, call, event = applied.info, applied.leg, applied.call, applied.event
    if not ExternalNumber.objects.filter(pk=line_id, is_parking=True).exists():
        return None
    now = timezone.now()
    received = event.received_at
    deadline = received + timedelta(seconds=settings.ROUTING_DEADLINE_SECONDS)
    choice = routing_choose(call=call, now=now)
    decision = choice.decision
    answer = ""
    if now >= deadline:
        # Applied late (the inbox sweep, a slow database): MTT has routed the call already.
        decision = Decision.TOO_LATE
    elif not info.transport_id:
        decision, answer = Decision.FAILED, "the notification has no transportId"
    row = RoutingDecision(
        call=call,
        leg=leg,
        decision=decision,
        reason=choice.reason,
        manager=choice.manager,
        manager_name=_person(choice.manager),
        target_workplace=choice.workplace if choice.decision == Decision.TRANSFER else None,
        target_sip_id=choice.workplace.sip_id
        if choice.workplace and choice.decision == Decision.TRANSFER
        else "",
        received_at=received,
        decided_at=now,
        decision_ms=_ms(now - received),
        mtt_answer=answer,
    )
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        return None  # this leg was decided already (a duplicate trying)
    logger.info("Routing: call %s: %s (%s)", call.pk, decision, choice.reason)
    if decision not in (Decision.TRANSFER, Decision.RELEASE):
        return None
    return Plan(
        decision_id=row.pk,
        integration=event.integration,
        decision=decision,
        # Exactly as received: the tag may hold a Cyrillic letter (API.md).
        call_id=info.call_id,
        tag=info.tag,
        transport_id=info.transport_id,
        target_sip_id=row.target_sip_id,
        received_at=received,
        deadline=deadline,
    )


def _ms(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() * 1000))


# --- Dispatching (after commit) ------------------------------------------------------------------------

_executor_lock = threading.Lock()
_executor_state: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    global _executor_state
    with _executor_lock:
        # Keyed by pid: a forked Celery child must not use its parent's (threadless) pool.
        if _executor_state is None or _executor_state[0] != os.getpid():
            pool = ThreadPoolExecutor(max_workers=settings.ROUTING_WORKERS, thread_name_prefix="routing")
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


def routing_dispatch(applied: AppliedNotification) -> None:
    """ON_COMMIT hook: start sending what ``routing_decide`` decided, without waiting for it."""
    with _PLANS_LOCK:
        plan = _PLANS.pop(applied, None)
    if plan is None:
        return
    if settings.ROUTING_WORKERS <= 0:
        routing_send(plan=plan)
        return
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
        latency_ms=_ms(sent_at - plan.received_at) if sent_at else None,
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


# --- Parking switches ----------------------------------------------------------------------------------


def external_numbers_set_parking(
    *, integration: Integration, numbers: Sequence[str], is_parking: bool
) -> int:
    """``setParkingNumbers`` for some numbers of one integration, then our flags = what MTT confirmed.

    Raises ``MttError`` (our flags untouched) when MTT does not confirm. Returns the rows updated.
    """
    numbers = sorted(set(numbers))
    if not numbers:
        return 0
    MttClient(integration).set_parking_numbers(numbers, is_parking=is_parking)
    updated = ExternalNumber.objects.filter(integration=integration, number__in=numbers).update(
        is_parking=is_parking
    )
    logger.info("Parking %s for %s (integration %s)", "on" if is_parking else "off", numbers, integration.pk)
    parking_numbers_forget(integration.pk)
    return updated


# --- Which notifications cannot wait for the applier ------------------------------------------------

# integration id -> (numbers with parking on, read at: time.monotonic()). A stale set costs only speed:
# a parked call's trying that is not recognised here is routed by the applier process instead, a few
# milliseconds later.
PARKING_CACHE_SECONDS = 5.0
_PARKING: dict[int, tuple[frozenset[str], float]] = {}


def _parking_numbers(integration_id: int) -> frozenset[str]:
    cached = _PARKING.get(integration_id)
    if cached is not None and time.monotonic() - cached[1] < PARKING_CACHE_SECONDS:
        return cached[0]
    numbers = frozenset(
        ExternalNumber.objects.filter(integration_id=integration_id, is_parking=True).values_list(
            "number", flat=True
        )
    )
    _PARKING[integration_id] = (numbers, time.monotonic())
    return numbers


def parking_numbers_forget(integration_id: int | None = None) -> None:
    if integration_id is None:
        _PARKING.clear()
    else:
        _PARKING.pop(integration_id, None)


def routing_is_urgent(integration: Integration, envelope: Envelope) -> bool:
    """Inbox urgency check: an incoming call's ``trying`` to a number with parking on is applied in the
    notify URL's request even with NOTIFY_APPLY_IN=applier — its routing command has MTT's 5 s."""
    info = (envelope.result or {}).get("callInfo") or {}
    if not isinstance(info, dict) or info.get("state") != "trying" or info.get("type") != Direction.INCOMING:
        return False
    numbers = _parking_numbers(integration.pk)
    if not numbers:
        return False
    callee = info.get("callee") or {}
    if not isinstance(callee, dict):
        return False
    for raw in (callee.get("id"), callee.get("accountId"), callee.get("displayId")):
        if isinstance(raw, str) and bare_number(raw) in numbers:
            return True
    return False


def routing_reapply_parking(integration: Integration) -> None:
    """ON_CONNECT hook: after a (re)connection, tell MTT again which numbers park (never raises).

    Numbers the PBX no longer has (inactive) are left out: MTT refuses unknown numbers.
    """
    try:
        rows = ExternalNumber.objects.filter(integration_id=integration.pk, is_active=True)
        fresh = Integration.objects.get(pk=integration.pk)
        client = MttClient(fresh)
        for flag in (True, False):
            numbers = sorted(rows.filter(is_parking=flag).values_list("number", flat=True))
            if numbers:
                client.set_parking_numbers(numbers, is_parking=flag)
    except MttError as exc:
        from integrations.services import integration_record_error

        integration_record_error(
            integration_id=integration.pk, message=f"Parking could not be re-applied: {exc}"
        )
        logger.warning("Integration %s: re-applying parking failed: %s", integration.pk, exc)
    except Exception:
        logger.exception("Integration %s: re-applying parking failed", integration.pk)


# --- Reads ---------------------------------------------------------------------------------------------


def routing_decisions_prefetch() -> Prefetch:
    """For call lists: ``.prefetch_related(routing_decisions_prefetch())`` so the call table reads
    ``call.routing_decisions.all`` without a query per call."""
    return Prefetch(
        "routing_decisions",
        queryset=RoutingDecision.objects.select_related("target_workplace").order_by("decided_at", "pk"),
    )
