"""The calls app's models: the call record (calls.py), recordings, and what the CRM does with calls
(click-to-call, routing decisions, the callback queue: routing.py)."""

from .calls import REPORT_COLUMNS, Call, CallEvent, CallLeg, Direction
from .recordings import Recording, RecordingAccess
from .routing import CallbackTask, DialRequest, RoutingDecision

__all__ = [
    "REPORT_COLUMNS",
    "Call",
    "CallEvent",
    "CallLeg",
    "CallbackTask",
    "DialRequest",
    "Direction",
    "Recording",
    "RecordingAccess",
    "RoutingDecision",
]
