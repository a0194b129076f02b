"""Click-to-call (guide §5.2, API.md makeCall): a click on a number rings the operator's own phone.

``call_dial`` asks MTT to ``makeCall`` with ``callerId`` = the user's workplace SIP ID and ``calleid`` =
the client's number in the dialling format of ``CLICK_TO_CALL_NUMBER_FORMAT``; MTT rings the workplace and,
when it is picked up, the client. No Call row is made for the click: the guide never says that makeCall's
answer id is the Call-ID its notifications will carry (§10.3.1 vs §10.1.2). The call's notifications make
the call like any other, and ``dial_match_call`` (run when a call's leg first shows a workplace) links it
to the click by what they carry: that workplace, the dialled number, within ``DIAL_MATCH_SECONDS`` of the
click — or makeCall's id, when it is the Call-ID after all. The call then counts as placed by who clicked
(``initiated_by``). A click no call answers to within that time is marked *expired* by the reconciliation
(calls/reconcile.py); it never made anyone busy, since it made no call.

A double click must place one call (makeCall is never repeated: a second request rings the client a
second time). Each click of a user on a number is claimed inside a transaction that locks the user's
row (``SELECT … FOR UPDATE``), so the clicks of one user are serialised across every process: the
first makes a ``DialRequest``, and a click that finds one for the same number younger than
``CLICK_TO_CALL_DEDUPE_SECONDS`` gets that request's answer instead (waiting for it when it is still
being placed). The lock is held only for the claim, never during the HTTP request. Requests that
certainly placed no call (MTT refused, rate limit) do not count, so a second click retries them; a
timeout does count — the call may have gone through. On SQLite the IMMEDIATE transactions serialise the
claim instead.

Every failure comes back as a ``DialResult`` with words for the person and an HTTP status (4xx/503),
never an exception: no workplace, integration not connected or needing reconnect, a number that cannot
be dialled, MTT refusing (4xx), rate limiting (429 or our limiter), MTT unreachable or timing out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from contacts.models import Contact
from contacts.phones import (
    dial_format,
    dial_problem,
    format_for_people,
    is_pbx_sip_id,
    normalize,
    shown,
    split_extension,
)
from contacts.selectors import contact_find_by_number
from integrations.models import Integration, Workplace
from integrations.mtt.client import MttClient
from integrations.mtt.errors import (
    MttAuthError,
    MttBadResponse,
    MttError,
    MttPermanentError,
    MttRateLimited,
    MttTransientError,
)

from .models import Call, DialRequest, Direction

logger = logging.getLogger(__name__)

# How often a second click looks whether the first one got its answer.
_POLL_SECONDS = 0.1
# A click's call shows up in the notifications within this long of the click (MTT rings the operator's phone
# at once), or the click is expired: an unrelated later call to the same number is not taken for it.
DIAL_MATCH_SECONDS = 120


@dataclass(frozen=True)
class DialResult:
    """The answer to one click: ``message`` (ok) or ``error`` words, and the HTTP status to answer."""

    ok: bool
    status: int
    code: str
    message: str
    call_id: int | None = None
    duplicate: bool = False
    retry_after: float | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ok": self.ok, "code": self.code}
        if self.ok:
            data["message"] = self.message
        else:
            data["error"] = self.message
        if self.call_id is not None:
            data["call_id"] = self.call_id
        if self.duplicate:
            data["duplicate"] = True
        return data


def _refusal(status: int, code: str, message: str, **extra: Any) -> DialResult:
    return DialResult(ok=False, status=status, code=code, message=message, **extra)


def dial_string(e164: str) -> str:
    """The number as makeCall's ``calleid`` (CLICK_TO_CALL_NUMBER_FORMAT)."""
    style = settings.CLICK_TO_CALL_NUMBER_FORMAT
    if style == "e164":
        return e164
    if style == "trunk8" and e164.startswith("+7") and len(e164) == 12:
        return "8" + e164[2:]
    if style == "trunk8" and e164.startswith("+"):
        # Dialled the Russian way, a foreign number takes the international prefix 8~10 that goes with
        # the trunk 8: sent bare ("375291234567"), a PBX dialling so read it as a number at home.
        return "810" + e164[1:]
    # "digits": 79219462761 for Russia (11 digits starting with 7), E.164 digits for other countries.
    return dial_format(e164)


def _client_label(contact: Contact | None, e164: str) -> str:
    if contact is not None and (contact.name or contact.company):
        return contact.name or contact.company
    return format_for_people(e164)


def _check_user(user: Any) -> tuple[Workplace | None, DialResult | None]:
    workplace = Workplace.objects.select_related("integration").filter(user_id=user.pk).first()
    if workplace is None:
        return None, _refusal(
            409,
            "no_workplace",
            _(
                "No PBX workplace is linked to your account, so the PBX does not know which phone to "
                "ring. Ask an administrator to link one (Administration → Workplaces)."
            ),
        )
    if not workplace.is_active:
        return None, _refusal(
            409,
            "no_workplace",
            _("Your workplace %(sip)s is no longer in the PBX. Ask an administrator to link another one.")
            % {"sip": workplace.sip_id},
        )
    status = workplace.integration.status
    if status == Integration.Status.NOT_CONNECTED:
        return None, _refusal(
            503,
            "not_connected",
            _(
                "The CRM is not connected to MTT yet. An administrator must connect it "
                "(Administration → Integrations → Connect)."
            ),
        )
    if status == Integration.Status.NEEDS_RECONNECT:
        return None, _refusal(
            503,
            "needs_reconnect",
            _(
                "The connection to MTT has expired. An administrator must reconnect it "
                "(Administration → Integrations → Reconnect)."
            ),
        )
    return workplace, None


def call_dial(*, user: Any, number: str) -> DialResult:
    """Ring the user's phone and then the client at ``number`` (any format); see the module docstring."""
    e164 = normalize(number or "")
    if not e164:
        # Why, in the contact form's words ("too few digits", "no Russian code 029", …) when there are some.
        bare = split_extension(number or "")[0]
        problem = dial_problem(bare) if bare and not is_pbx_sip_id(bare) else None
        return _refusal(
            400,
            "bad_number",
            problem
            or _("This number cannot be dialled: “%(number)s” is not a phone number.")
            % {"number": shown(number or "") or "—"},
        )
    workplace, refused = _check_user(user)
    if refused is not None:
        return refused
    assert workplace is not None
    request, first = _claim(user=user, e164=e164, dialled=dial_string(e164), workplace=workplace)
    if not first:
        return _answer_of(_wait_for(request), duplicate=True)
    # MTT's makeCall rings a number, not its extension: the operator dials it once the line answers.
    return _place(request=request, user=user, workplace=workplace, extension=split_extension(number)[1])


def _claim(*, user: Any, e164: str, dialled: str, workplace: Workplace) -> tuple[DialRequest, bool]:
    """This click's DialRequest, or the recent one of the same user and number (False)."""
    now = timezone.now()
    window = timedelta(seconds=settings.CLICK_TO_CALL_DEDUPE_SECONDS)
    with transaction.atomic():
        # One user's clicks queue here, in every process; other users are not held up.
        get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk").first()
        recent = (
            DialRequest.objects.filter(user_id=user.pk, number=e164, created_at__gte=now - window)
            .exclude(status=DialRequest.Status.FAILED)
            .order_by("-created_at", "-pk")
            .first()
        )
        if recent is not None:
            return recent, False
        return (
            DialRequest.objects.create(
                user_id=user.pk, number=e164, dialled=dialled, workplace=workplace, created_at=now
            ),
            True,
        )


def _wait_for(request: DialRequest) -> DialRequest:
    """The request once its first click got an answer (or as it is after the longest MTT wait)."""
    deadline = time.monotonic() + settings.MTT_CONNECT_TIMEOUT + settings.MTT_READ_TIMEOUT + 2.0
    while request.status == DialRequest.Status.PENDING and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        request.refresh_from_db()
    return request


def _answer_of(request: DialRequest, *, duplicate: bool = False) -> DialResult:
    if request.status == DialRequest.Status.PENDING:
        return _refusal(
            409,
            "in_progress",
            _("Your previous click on this number is still being placed; please wait."),
            duplicate=duplicate,
        )
    return DialResult(
        ok=request.status == DialRequest.Status.PLACED,
        status=request.http_status,
        code=request.code,
        message=request.message,
        call_id=request.call_id,
        duplicate=duplicate,
    )


def _place(*, request: DialRequest, user: Any, workplace: Workplace, extension: str = "") -> DialResult:
    integration = workplace.integration
    try:
        mtt_call_id = MttClient(integration).make_call(caller_id=workplace.sip_id, callee=request.dialled)
    except MttError as exc:
        status, code, message, placed_maybe = _describe(exc)
        logger.warning("Click-to-call by user %s failed: %s", user.pk, exc)
        result = _refusal(
            status,
            code,
            message,
            retry_after=getattr(exc, "retry_after", None) if isinstance(exc, MttRateLimited) else None,
        )
        _finish(
            request,
            result,
            DialRequest.Status.UNKNOWN if placed_maybe else DialRequest.Status.FAILED,
        )
        return result
    contact = contact_find_by_number(number=request.number)
    message = _("Your phone is ringing — pick up to call %(client)s") % {
        "client": _client_label(contact, request.number)
    }
    if extension:
        message += ". " + _("When the line answers, dial the extension %(extension)s.") % {
            "extension": extension
        }
    result = DialResult(ok=True, status=200, code="placed", message=message)
    request.mtt_call_id = mtt_call_id
    _finish(request, result, DialRequest.Status.PLACED)
    logger.info("Click-to-call: user %s placed %s (MTT id %s)", user.pk, request.pk, mtt_call_id)
    return result


def _describe(exc: MttError) -> tuple[int, str, str, bool]:
    """(HTTP status, code, words, whether the call may have been placed) for an MTT failure."""
    if isinstance(exc, MttAuthError):
        # MttReconnectRequired too: the refresh was refused, or the tokens are gone.
        return 503, "needs_reconnect", exc.user_message, False
    if isinstance(exc, MttRateLimited):
        return (
            429,
            "rate_limited",
            _("MTT accepts only 5 requests per second and is busy now; please click again in a moment."),
            False,
        )
    if isinstance(exc, MttBadResponse):
        # A 2xx we cannot read: the call most likely went through.
        return (
            502,
            "unknown",
            _("MTT answered something we could not read; the call may have been placed. Check your phone."),
            True,
        )
    if isinstance(exc, MttPermanentError):
        return 422, "refused", exc.user_message, False
    cause = exc.__cause__
    if isinstance(exc, MttTransientError) and (
        isinstance(cause, requests.ReadTimeout) or (exc.status_code or 0) >= 500
    ):
        return (
            503,
            "unknown",
            _(
                "MTT did not confirm the call in time; it may still ring. Wait a few seconds before "
                "clicking again."
            ),
            True,
        )
    return (
        503,
        "unreachable",
        _("MTT cannot be reached right now; the call was not placed. Please try again in a minute."),
        False,
    )


def _finish(request: DialRequest, result: DialResult, status: str) -> None:
    request.status = status
    request.message = result.message
    request.code = result.code
    request.http_status = result.status
    request.finished_at = timezone.now()
    request.save(
        # Not "call": the call's first notification may have linked it meanwhile (dial_match_call).
        update_fields=["status", "message", "code", "http_status", "finished_at", "mtt_call_id"]
    )


def dial_match_call(*, call: Call, workplace_id: int, at: datetime) -> None:
    """Link ``call`` to the click that placed it, if one did (calls.services, inside the call's
    transaction, when a leg of the call first shows ``workplace_id``; ``at``: when that notification
    arrived). See the module docstring for the rule."""
    if call.initiated_by_id is not None or call.direction != Direction.OUTGOING:
        return
    window = timedelta(seconds=DIAL_MATCH_SECONDS)
    # Still being placed too: the call's first notification may come before makeCall's answer does.
    waiting = DialRequest.objects.filter(
        status__in=[DialRequest.Status.PENDING, DialRequest.Status.PLACED, DialRequest.Status.UNKNOWN],
        call__isnull=True,
        created_at__gte=at - window,
        created_at__lte=at,
    )
    # makeCall's id, if MTT does use it as the Call-ID (its part before "~" is the call's key).
    rule = Q(mtt_call_id=call.call_key) | Q(mtt_call_id__startswith=f"{call.call_key}~")
    if call.client_number:
        rule |= Q(workplace_id=workplace_id, number=call.client_number)
    request = waiting.filter(rule).order_by("created_at", "pk").first()
    # The click is linked once (another call claiming it at the same moment finds it taken).
    if request is None or not DialRequest.objects.filter(pk=request.pk, call__isnull=True).update(call=call):
        return
    call.initiated_by_id = request.user_id
    logger.info("Click-to-call: request %s is call %s", request.pk, call.pk)
