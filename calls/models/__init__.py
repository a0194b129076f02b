"""The calls app's models: the call record (calls.py), recordings, what the CRM does with calls
(click-to-call, routing decisions, the callback queue: routing.py), the wrap-up (results, follow-up
tasks: wrapup.py) and the reports' rollups (reports.py)."""

from .calls import REPORT_COLUMNS, Call, CallEvent, CallLeg, Direction
from .recordings import Recording, RecordingAccess
from .reports import (
    CallbackDayRollup,
    CallDayRollup,
    CallHourRollup,
    OfferDayRollup,
    OperatorDayRollup,
    ReportRollupState,
    RoutingDayRollup,
)
from .routing import CallbackTask, DialRequest, RoutingDecision
from .wrapup import CallResult, FollowUpTask

__all__ = [
    "REPORT_COLUMNS",
    "Call",
    "CallDayRollup",
    "CallEvent",
    "CallHourRollup",
    "CallLeg",
    "CallResult",
    "CallbackDayRollup",
    "CallbackTask",
    "DialRequest",
    "Direction",
    "FollowUpTask",
    "OfferDayRollup",
    "OperatorDayRollup",
    "Recording",
    "RecordingAccess",
    "ReportRollupState",
    "RoutingDayRollup",
    "RoutingDecision",
]
