"""Smart routing of parked calls (guide §5.4, §10.2; API.md "Parking and smart routing"): the decision.

An incoming call to an external number with parking on waits up to 5 s at the PBX. On the parked leg's
``trying`` we decide at once:

- the caller's contact has a personal manager with a workplace in this PBX who is not on a live call →
  ``transferCall`` the parked leg (its ``call.id``, ``tag`` and ``transportId`` exactly as received) to the
  manager's workplace SIP ID;
- otherwise (unknown client, no manager, manager without a workplace or busy, a blocklisted number,
  outside ``ROUTING_HOURS``) → ``terminateCall`` the parked leg, which releases it to the PBX's own
  routing at once instead of after 5 s.

``routing_decide`` runs inside the call's transaction (calls.services.call_apply_notification, first of
what the CRM does with a call), records a ``RoutingDecision`` (unique per leg: a duplicate ``trying``
decides nothing twice) and returns the ``Plan`` that ``routing.send.routing_dispatch`` sends after the
commit. The applier takes a parked call's ``trying`` among the first (NotificationEvent.Priority.CARD).

No command leaves later than ``ROUTING_DEADLINE_SECONDS`` (4.5 s) after the notification arrived
(``NotificationEvent.received_at``): checked when deciding, and again right before the request leaves
(routing/send.py) — past it the command is dropped and the decision recorded as *too late*: a later
command would act on a call MTT has routed already.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q
from django.utils import timezone

from contacts.models import Contact
from contacts.people import person_name
from contacts.phones import normalize
from integrations.models import ExternalNumber, Integration, NotificationEvent, Workplace
from integrations.mtt.callinfo import CallInfo
from integrations.selectors import SECRET_FIELDS

from ..models import Call, CallLeg, Direction, RoutingDecision

logger = logging.getLogger(__name__)

Decision = RoutingDecision.Decision
Reason = RoutingDecision.Reason

# A live call nobody heard of for this long lost its last notifications: it does not make anyone busy.
BUSY_MAX_AGE = timedelta(hours=12)


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


def routing_decide(*, call: Call, leg: CallLeg, info: CallInfo, event: NotificationEvent) -> Plan | None:
    """On a parked leg's ``trying``: decide, record the decision with the call, and return what to send
    after the commit (None: nothing to send — not a parked leg, decided already, or too late)."""
    if info.state != "trying" or not leg.is_line_leg or leg.direction != Direction.INCOMING:
        return None
    if call.line_id is None:
        return None
    if not ExternalNumber.objects.filter(pk=call.line_id, is_parking=True).exists():
        return None
    now = timezone.now()
    received = event.received_at
    deadline = received + timedelta(seconds=settings.ROUTING_DEADLINE_SECONDS)
    choice = routing_choose(call=call, now=now)
    decision = choice.decision
    answer = ""
    if now >= deadline:
        # Applied late (the applier far behind, a slow database): MTT has routed the call already.
        decision = Decision.TOO_LATE
    elif not info.transport_id:
        decision, answer = Decision.FAILED, "the notification has no transportId"
    transfer = choice.decision == Decision.TRANSFER
    row = RoutingDecision(
        call=call,
        leg=leg,
        decision=decision,
        reason=choice.reason,
        manager=choice.manager,
        manager_name=person_name(choice.manager),
        target_workplace=choice.workplace if transfer else None,
        target_sip_id=choice.workplace.sip_id if choice.workplace and transfer else "",
        received_at=received,
        decided_at=now,
        decision_ms=ms_between(now - received),
        mtt_answer=answer,
    )
    try:
        # A savepoint: on a duplicate trying (the leg decided already) the call's transaction goes on.
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        return None
    logger.info("Routing: call %s: %s (%s)", call.pk, decision, choice.reason)
    if decision not in (Decision.TRANSFER, Decision.RELEASE):
        return None
    return Plan(
        decision_id=row.pk,
        # Read here, not with every notification: only a parked call's trying is sent anything. The secrets
        # stay deferred until the request needs its token.
        integration=Integration.objects.defer(*SECRET_FIELDS).get(pk=event.integration_id),
        decision=decision,
        # Exactly as received: the tag may hold a Cyrillic letter (API.md).
        call_id=info.call_id,
        tag=info.tag,
        transport_id=info.transport_id,
        target_sip_id=row.target_sip_id,
        received_at=received,
        deadline=deadline,
    )


def ms_between(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() * 1000))


# --- Reads ---------------------------------------------------------------------------------------------


def routing_decisions_prefetch() -> Prefetch:
    """For call lists: ``.prefetch_related(routing_decisions_prefetch())`` so the call table reads
    ``call.routing_decisions.all`` without a query per call."""
    return Prefetch(
        "routing_decisions",
        queryset=RoutingDecision.objects.select_related("target_workplace").order_by("decided_at", "pk"),
    )
