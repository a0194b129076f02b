"""The operator's desk: how long the card of a finished call waits for its wrap-up (README "The desk")."""

from __future__ import annotations

from .base import env

# The card of a call the operator took stays after hang-up for the wrap-up, on every page and after a
# reload, for this long (then the wrap-up is finished from the call's page, reached from the call log); a
# missed call's red notice is brought back for as long after the call ended.
CALLS_WRAPUP_CARD_MINUTES = env.int("CALLS_WRAPUP_CARD_MINUTES", default=60)
if CALLS_WRAPUP_CARD_MINUTES < 0:
    raise ValueError("CALLS_WRAPUP_CARD_MINUTES must be 0 (no wrap-up card) or more")
