"""Sending the screen pop: the channel layer's ``group_send``, once the apply has committed.

The one way a card or a live-board row reaches the browsers: the applier process applies a notification,
builds the messages inside the transaction (``cards.screen_pop_messages``) and, after the commit, hands them
to ``push``. The channel layer (channels-redis in production, channels-lite on one machine) carries them to
whichever Daphne process holds the operator's socket.

The applier is a synchronous program, and a channel layer's connections belong to the event loop that opened
them: a new loop per send (what ``async_to_sync`` does) would open new Redis connections every time. So each
process keeps ONE event loop in a daemon thread for its sends. ``push`` hands the messages to it and returns
at once: a slow or broken channel layer never delays applying (the call is recorded either way; the page's
resync on every (re)connect shows it). ``push_flush`` waits for the sends in flight (the applier's shutdown,
tests).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

Message = tuple[str, dict[str, Any]]
T = TypeVar("T")

SEND_TIMEOUT = 5.0
# Sends in flight per process; past this the layer is not keeping up and new pushes are dropped.
MAX_PENDING_SENDS = 10_000


class _PushLoop:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="screen-pop-push", daemon=True)
        self.thread.start()


_push_loop: _PushLoop | None = None
_lock = threading.Lock()
_pending: set[Future[None]] = set()


def _loop() -> asyncio.AbstractEventLoop:
    global _push_loop
    with _lock:
        # After a fork the parent's thread does not exist here: start our own.
        if _push_loop is None or _push_loop.pid != os.getpid() or not _push_loop.thread.is_alive():
            _push_loop = _PushLoop()
        return _push_loop.loop


async def _send_all(messages: list[Message]) -> None:
    try:
        layer = get_channel_layer()
    except Exception as exc:
        logger.warning(
            "Screen pop: no channel layer (%s: %s); the page's resync will show it", type(exc).__name__, exc
        )
        return
    if layer is None:
        return
    for group, message in messages:
        try:
            await asyncio.wait_for(layer.group_send(group, message), SEND_TIMEOUT)
        except Exception as exc:
            logger.warning(
                "Screen pop: push %s to %s failed (%s: %s); the page's resync will show it",
                message.get("type"),
                group,
                type(exc).__name__,
                exc,
            )


def push(messages: list[Message], *, received_at: float | None = None) -> None:
    """Send ``(group, message)`` pairs without waiting; never raises. ``received_at`` (epoch seconds): when
    the notification arrived — the socket's consumer times the screen pop from it (never forwarded)."""
    if not messages:
        return
    stamp: dict[str, Any] = {"sent_at": time.time() * 1000}
    if received_at is not None:
        stamp["received_at"] = received_at
    stamped = [(group, {**message, **stamp}) for group, message in messages]
    with _lock:
        if len(_pending) >= MAX_PENDING_SENDS:
            logger.warning(
                "Screen pop: %s pushes in flight; push to %s dropped", len(_pending), messages[0][0]
            )
            return
    try:
        future = asyncio.run_coroutine_threadsafe(_send_all(stamped), _loop())
    except Exception as exc:
        logger.warning(
            "Screen pop: push failed (%s: %s); the page's resync will show it", type(exc).__name__, exc
        )
        return
    with _lock:
        _pending.add(future)
    future.add_done_callback(_done)


def _done(future: Future[None]) -> None:
    with _lock:
        _pending.discard(future)


def run_on_push_loop(coro: Coroutine[Any, Any, T], *, timeout: float) -> T:
    """Run a coroutine that uses the channel layer on this process's push loop, and wait for its result
    (the health check's round trip through the layer)."""
    return asyncio.run_coroutine_threadsafe(coro, _loop()).result(timeout=timeout)


def push_flush(timeout: float = SEND_TIMEOUT) -> None:
    """Wait (at most ``timeout``) for this process's pushes in flight."""
    deadline = time.monotonic() + timeout
    with _lock:
        waiting = list(_pending)
    for future in waiting:
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except Exception:
            logger.debug("Screen pop: a push did not finish in time", exc_info=True)
