"""Smart routing of parked calls: deciding with the call (decide.py), sending after the commit (send.py)."""

from .decide import Plan, routing_choose, routing_decide, routing_decisions_prefetch, within_hours
from .send import routing_dispatch, routing_pool_shutdown, routing_send

__all__ = [
    "Plan",
    "routing_choose",
    "routing_decide",
    "routing_decisions_prefetch",
    "routing_dispatch",
    "routing_pool_shutdown",
    "routing_send",
    "within_hours",
]
