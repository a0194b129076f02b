"""The MTT request budget: 5 requests per second per integration, shared by every process.

API.md "Known limits" 7: MTT allows 5 requests per second per integration, for all API methods
together. The web server and every Celery worker talk to MTT, so the budget is counted in one place
that all of them see, as a sliding-window log (a permit is granted only while fewer than the limit were
granted in the last window, so no window of that length ever holds more than the limit):

* ``settings.REDIS_URL`` set: a sorted set per integration in Redis, checked and appended by one Lua
  script (atomic across processes and machines) that reads the clock with Redis's own ``TIME``;
* no Redis (the embedded demo: web and worker are separate processes on one machine): pyrate-limiter's
  ``SQLiteBucket`` over a SQLite file per integration in ``settings.VAR_DIR/ratelimit/``, every
  check-and-insert done under an exclusive ``fcntl.flock`` on a side file (processes and threads).

The clock is read INSIDE the atomic step in both. Read before it (as pyrate-limiter's ``RedisBucket``
and its ``Limiter`` loop do: the client's ``now`` travels as a script argument, and the blocking loop
re-puts with ``timestamp += planned sleep``), a process descheduled between the reading and the insert
writes an entry that looks older than it is and misses newer ones: measured, 6 grants within 1.1 s under
CPU load. Hence Redis's ``TIME`` in the script, and the local clock read under the lock; this module
uses pyrate-limiter's bucket API (``put``, ``waiting``, ``leak``) with its own small wait loop.

The window is a little longer than one second (``WINDOW_MS``): MTT counts arrivals, not our grants,
and requests reach it with network jitter; the margin keeps a burst from landing inside one second.

Priority: when permits are short, who goes first. Four classes (``Priority``), most urgent first:
routing commands (transferCall/terminateCall must reach MTT within the 5 s a call stays parked, API.md
"Parking and smart routing"), click-to-call (makeCall: a person waits for the phone to ring), sync
(the directory reads, setParkingNumbers) and recording downloads (a sweep may fetch hundreds). It works
by ceilings: every class counts the SAME entries, but a class is admitted only while fewer than its
ceiling are in the window: ``limit`` for routing, ``limit - 1`` for click-to-call, ``limit - 2`` for sync,
``limit - 3`` for downloads (never below 1; with the default 5: 5, 4, 3, 2). Each lower class leaves one
more permit of every window to the classes above it, so downloads alone never take more than 2 of the 5,
and a routing command waits at most one window whatever the lower classes do. ``priority=True`` is
routing, ``priority=False`` (the default) click-to-call: the "ordinary" share (``limit - 1``) of before
the ladder. (With ``MTT_RATE_LIMIT=1`` there is nothing to reserve; all classes share the one permit.)

``penalize()`` is called when MTT answers 429 with Retry-After: it stores "hold off until T" beside the
entries, and every process's requests wait until T (or fail fast with ``MttRateLimited`` when T is beyond
their ``max_wait``) — all but routing commands: one that comes after the 5 s of parking is worthless, and
one request per parked call does not hammer MTT.

Redis unreachable (stopped, restarting): rather than failing every request to MTT — routing commands
included — each process falls back to the local backend (the SQLite file in ``VAR_DIR/ratelimit/``,
shared by the processes of one machine) for ``REDIS_RETRY_SECONDS`` and then tries Redis again. While it
lasts the budget is counted per machine, not across machines; several machines may then send more than
5 requests per second together, and MTT's 429 (honoured by everyone through ``penalize``) is what
remains. With one machine (the usual deployment) nothing changes.

Objects (Redis clients, SQLite connections, lock file descriptors) are cached per process: the cache is
keyed by ``os.getpid()``, so a Celery prefork child never uses a connection it inherited from its parent.
The parent's objects stay referenced in the child and are never used or closed there (closing an
inherited SQLite connection could disturb the parent's).
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import random
import sqlite3
import threading
import time
import uuid
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import redis
from django.conf import settings
from pyrate_limiter import Rate, RateItem, SQLiteBucket, SQLiteQueries

from .errors import MttRateLimited, MttTransientError

logger = logging.getLogger(__name__)

# One second plus a safety margin for network jitter between our grant and MTT's count (see above).
WINDOW_MS = 1100
# A Retry-After longer than this is treated as this (a broken header must not stop us for hours).
MAX_PENALTY_SECONDS = 300.0
DEFAULT_KEY_PREFIX = "mttcrm:mtt-ratelimit:"
# The local backend deletes entries older than the window at most this often per process.
_LEAK_EVERY_MS = 10_000
_LOCAL_TABLE = "mtt_permits"
# Redis unreachable: use the local backend this long before trying Redis again.
REDIS_RETRY_SECONDS = 5.0


class Priority(Enum):
    """Classes of requests to MTT, most urgent first (see the module docstring)."""

    ROUTING = "routing"  # transferCall, terminateCall
    CLICK_TO_CALL = "click_to_call"  # makeCall
    SYNC = "sync"  # externalNumbersInfo, workplacesInfo, terminalsinfo, setParkingNumbers
    DOWNLOAD = "download"  # call records

    @property
    def rank(self) -> int:
        """0 for the most urgent class: the class leaves this many permits of a window to those above."""
        return list(Priority).index(self)


# What priority=False meant before the ladder: ordinary requests, one permit left to routing.
ORDINARY = Priority.CLICK_TO_CALL


def as_priority(priority: Priority | bool) -> Priority:
    """``True`` (the routing commands' old spelling) → ROUTING, ``False`` → ORDINARY."""
    if isinstance(priority, Priority):
        return priority
    return Priority.ROUTING if priority else ORDINARY


class _Store(Protocol):
    """Where one integration's entries and its 429 penalty live."""

    def try_acquire(self, *, priority: Priority) -> int:
        """Take a permit now if one is free: 0 when granted, else milliseconds until one may be."""
        ...

    def set_penalty(self, seconds: float) -> None: ...

    def close(self) -> None: ...


def _ceilings(limit: int) -> dict[Priority, int]:
    """How many entries a window may hold for each class still to be admitted (see the docstring)."""
    limit = max(1, limit)
    return {p: max(1, limit - p.rank) for p in Priority}


# --- Redis ------------------------------------------------------------------------------------------

# KEYS: entries (sorted set, score = grant time in ms), penalty ("hold off until", ms).
# ARGV: limit for this request, window ms, honour the penalty (1/0), a unique member id.
# Redis's TIME is the one clock of every process and machine; read inside the atomic script.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == '1' then
    local held = tonumber(redis.call('GET', KEYS[2]) or '0')
    if held > now then
        return held - now
    end
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
    redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[4])
    redis.call('PEXPIRE', KEYS[1], window * 2)
    return 0
end
-- Room comes when the (count - limit + 1)-th oldest entry leaves the window.
local leaving = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return math.max(1, tonumber(leaving[2]) + window - now + 1)
"""

# Keep the later of two deadlines: two 429s with different Retry-After must not shorten the wait.
_PENALIZE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = now + tonumber(ARGV[1])
if held > tonumber(redis.call('GET', KEYS[1]) or '0') then
    redis.call('SET', KEYS[1], held, 'PX', ARGV[1])
end
return 0
"""

_redis_clients: dict[tuple[int, str], Any] = {}


def _redis_client(url: str) -> Any:
    key = (os.getpid(), url)
    client = _redis_clients.get(key)
    if client is None:
        # Short socket timeouts: a hung Redis must not hang a request longer than MTT itself would.
        client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
        _redis_clients[key] = client
    return client


class _RedisStore:
    def __init__(self, url: str, prefix: str, integration_id: int, limit: int) -> None:
        redis = _redis_client(url)
        self.keys = [f"{prefix}{integration_id}", f"{prefix}{integration_id}:penalty"]
        self.ceilings = _ceilings(limit)
        # register_script reloads the script by itself when Redis restarted and forgot it.
        self._acquire = redis.register_script(_ACQUIRE_LUA)
        self._penalize = redis.register_script(_PENALIZE_LUA)
        # Members of a sorted set are unique: each grant needs its own (next() on a count is atomic).
        self._member = f"{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._counter = itertools.count()

    def try_acquire(self, *, priority: Priority) -> int:
        honour_penalty = 0 if priority is Priority.ROUTING else 1
        args = [self.ceilings[priority], WINDOW_MS, honour_penalty, f"{self._member}:{next(self._counter)}"]
        return int(self._acquire(keys=self.keys, args=args))

    def set_penalty(self, seconds: float) -> None:
        self._penalize(keys=self.keys[1:], args=[max(1, int(seconds * 1000))])

    def close(self) -> None:
        pass  # the client is shared by every integration of this process


# --- Local (one machine, several processes) ---------------------------------------------------------


class _FlockLock:
    """A re-entrant exclusive lock across processes (``fcntl.flock``) and this process's threads.

    ``flock`` blocks in the kernel and wakes the waiter as soon as the holder unlocks (no polling),
    and the kernel drops it if the holder dies.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> _FlockLock:
        self._thread_lock.acquire()
        try:
            if self._depth == 0:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._depth += 1
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        with self._thread_lock:
            if self._fd is not None and self._depth == 0:
                os.close(self._fd)
                self._fd = None


class _LocalStore:
    def __init__(self, directory: Path, integration_id: int, limit: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.name = f"mtt-{integration_id}"
        self.lock = _FlockLock(directory / f"{self.name}.lock")
        with self.lock:
            conn = sqlite3.connect(
                directory / f"{self.name}.sqlite3", isolation_level="DEFERRED", check_same_thread=False
            )
            # As pyrate-limiter's own file-lock mode: WAL, and no fsync on every permit.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(SQLiteQueries.CREATE_BUCKET_TABLE.format(table=_LOCAL_TABLE))
            conn.execute(
                SQLiteQueries.CREATE_INDEX_ON_TIMESTAMP.format(
                    index_name=f"idx_{_LOCAL_TABLE}_ts", table_name=_LOCAL_TABLE
                )
            )
            conn.execute("CREATE TABLE IF NOT EXISTS mtt_penalty (id INTEGER PRIMARY KEY, until_ms INTEGER)")
            conn.commit()
        self.conn = conn
        # One bucket object per class over ONE table and ONE lock: all count the same rows, each with
        # its own ceiling.
        self.buckets = {
            p: SQLiteBucket([Rate(ceiling, WINDOW_MS)], conn, _LOCAL_TABLE, lock=self.lock)
            for p, ceiling in _ceilings(limit).items()
        }
        self._last_leak_ms = 0

    def try_acquire(self, *, priority: Priority) -> int:
        bucket = self.buckets[priority]
        # The whole step under the lock, the clock read included (see the module docstring); the
        # buckets take the same lock again inside put() and leak(), which is why it is re-entrant.
        with self.lock:
            now = _now_ms()
            if now - self._last_leak_ms >= _LEAK_EVERY_MS:
                bucket.leak(now)
                self._last_leak_ms = now
            if priority is not Priority.ROUTING:
                row = self.conn.execute("SELECT until_ms FROM mtt_penalty WHERE id = 1").fetchone()
                if row and row[0] > now:
                    return int(row[0]) - now
            item = RateItem(self.name, now)
            if bucket.put(item):
                return 0
            wait = bucket.waiting(item)
        # waiting() is exact for a sliding-window log; anything else would be an odd state: retry soon.
        return wait if isinstance(wait, int) and wait > 0 else 5

    def set_penalty(self, seconds: float) -> None:
        with self.lock:
            self.conn.execute(
                "INSERT INTO mtt_penalty (id, until_ms) VALUES (1, ?) "
                "ON CONFLICT(id) DO UPDATE SET until_ms = max(until_ms, excluded.until_ms)",
                (_now_ms() + int(seconds * 1000),),
            )
            self.conn.commit()

    def close(self) -> None:
        self.conn.close()
        self.lock.close()


def _now_ms() -> int:
    # Wall clock: comparable between processes, and still right after a reboot (the file outlives it).
    return time.time_ns() // 1_000_000


# --- The per-process cache --------------------------------------------------------------------------

_stores: dict[tuple[Any, ...], _Store] = {}
_stores_lock = threading.Lock()


# (pid, monotonic time until which this process counts locally because Redis could not be reached)
_redis_fallback: tuple[int, float] = (0, 0.0)


def _redis_unreachable_now() -> bool:
    pid, until = _redis_fallback
    return pid == os.getpid() and time.monotonic() < until


def _fall_back_to_local(exc: BaseException) -> None:
    global _redis_fallback
    if not _redis_unreachable_now():
        logger.warning(
            "MTT rate limiter: Redis unreachable (%s); counting on this machine for %.0f s",
            type(exc).__name__,
            REDIS_RETRY_SECONDS,
        )
    _redis_fallback = (os.getpid(), time.monotonic() + REDIS_RETRY_SECONDS)


def _signature(integration_id: int) -> tuple[Any, ...]:
    limit = int(settings.MTT_RATE_LIMIT)
    if settings.REDIS_URL and not _redis_unreachable_now():
        prefix = getattr(settings, "MTT_RATE_LIMIT_KEY_PREFIX", DEFAULT_KEY_PREFIX)
        return ("redis", settings.REDIS_URL, prefix, integration_id, limit)
    return ("local", str(Path(settings.VAR_DIR) / "ratelimit"), integration_id, limit)


def _store(integration_id: int) -> _Store:
    signature = _signature(integration_id)
    key = (os.getpid(), *signature)
    store = _stores.get(key)
    if store is not None:
        return store
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            if signature[0] == "redis":
                store = _RedisStore(signature[1], signature[2], integration_id, signature[4])
            else:
                store = _LocalStore(Path(signature[1]), integration_id, signature[3])
            _stores[key] = store
    return store


def _forget(integration_id: int) -> None:
    """Drop this process's objects for the integration so the next call builds them anew."""
    key = (os.getpid(), *_signature(integration_id))
    with _stores_lock:
        store = _stores.pop(key, None)
    if store is not None:
        try:
            store.close()
        except Exception:  # the store is broken already; we only let go of it
            logger.debug("Closing a broken rate limiter store failed", exc_info=True)


def _store_errors() -> tuple[type[BaseException], ...]:
    return (sqlite3.Error, OSError, redis.RedisError)


# --- The interface ----------------------------------------------------------------------------------


def acquire(
    integration_id: int, *, priority: Priority | bool = False, max_wait: float | None = None
) -> float:
    """Block until a permit for one request to MTT is granted; return the seconds waited.

    ``priority``: the request's class (``Priority``); ``True`` is ROUTING, ``False`` ORDINARY.

    Raises ``MttRateLimited`` (with ``retry_after``) as soon as it is clear that no permit can be had
    within ``max_wait`` seconds (default ``settings.MTT_RATE_LIMIT_MAX_WAIT``; 0 = do not wait), and
    ``MttTransientError`` when the local store cannot be used (an unreachable Redis falls back to it).
    """
    priority = as_priority(priority)
    budget = max(0.0, float(settings.MTT_RATE_LIMIT_MAX_WAIT if max_wait is None else max_wait))
    started = time.monotonic()
    deadline = started + budget
    errors = _store_errors()
    rebuilt = False
    while True:
        try:
            wait_ms = _store(integration_id).try_acquire(priority=priority)
        except errors as exc:
            if not rebuilt:
                # A dropped connection or a replaced file: rebuild this process's objects once.
                rebuilt = True
                _forget(integration_id)
                continue
            if _signature(integration_id)[0] == "redis":
                _fall_back_to_local(exc)
                rebuilt = False
                continue
            logger.warning("MTT rate limiter store unavailable: %s", type(exc).__name__)
            raise MttTransientError(
                f"The MTT rate limiter store is unavailable ({type(exc).__name__})", method="ratelimit"
            ) from exc
        if wait_ms <= 0:
            return time.monotonic() - started
        # A few ms of jitter so processes woken for the same free permit do not all collide on it.
        wait = wait_ms / 1000 + random.uniform(0.001, 0.01)  # noqa: S311 - not cryptographic
        if wait > deadline - time.monotonic():
            # The next permit comes too late (entries only ever leave the window): fail now.
            logger.info(
                "MTT rate limit: no permit for integration %s within %.1f s (next in %.2f s, %s)",
                integration_id,
                budget,
                wait,
                priority.value,
            )
            raise MttRateLimited(
                "No permit from the MTT rate limiter in time", retry_after=round(wait, 3), method="ratelimit"
            )
        time.sleep(wait)


def penalize(integration_id: int, seconds: float) -> None:
    """Hold off every process's requests but routing for ``seconds`` (MTT answered 429 with Retry-After).

    Best effort: a failure to record the penalty is logged, never raised (the caller is already
    handling a 429).
    """
    if seconds <= 0:
        return
    if seconds > MAX_PENALTY_SECONDS:
        logger.warning("MTT asked to wait %.0f s; holding off %.0f s only", seconds, MAX_PENALTY_SECONDS)
        seconds = MAX_PENALTY_SECONDS
    try:
        try:
            _store(integration_id).set_penalty(seconds)
        except _store_errors() as exc:
            if _signature(integration_id)[0] != "redis":
                raise
            _forget(integration_id)
            _fall_back_to_local(exc)
            _store(integration_id).set_penalty(seconds)
    except _store_errors() as exc:
        logger.warning("Could not record the MTT 429 penalty: %s", type(exc).__name__)
        return
    logger.info("MTT rate limit: integration %s holds off requests %.1f s", integration_id, seconds)
