"""The shared 5 requests/second limiter (API.md "Known limits" 7), on the local and the Redis backend.

The Redis backend runs when ``REDIS_URL`` is set in the environment (e.g.
``REDIS_URL=redis://127.0.0.1:6379/15``); each run uses its own key prefix and deletes its keys.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from integrations.mtt import ratelimit
from integrations.mtt.errors import MttRateLimited, MttTransientError

LIMIT = 5
WINDOW = ratelimit.WINDOW_MS / 1000
ENV_REDIS_URL = os.environ.get("REDIS_URL", "")


def _backend_settings(name: str, tmp_path: Path) -> dict[str, Any]:
    common: dict[str, Any] = {"MTT_RATE_LIMIT": LIMIT, "MTT_RATE_LIMIT_MAX_WAIT": 30.0}
    if name == "local":
        return {**common, "REDIS_URL": "", "VAR_DIR": tmp_path}
    return {
        **common,
        "REDIS_URL": ENV_REDIS_URL,
        "MTT_RATE_LIMIT_KEY_PREFIX": f"test-mtt-ratelimit:{uuid.uuid4().hex}:",
        "VAR_DIR": tmp_path,
    }


@pytest.fixture(params=["local", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Settings for one backend, applied for the test (forked children inherit them)."""
    if request.param == "redis" and not ENV_REDIS_URL:
        pytest.skip("Redis backend: set REDIS_URL (e.g. redis://127.0.0.1:6379/15) to run it")
    overrides = _backend_settings(request.param, tmp_path)
    with override_settings(**overrides):
        yield {"name": request.param, **overrides}
    if request.param == "redis":
        import redis

        client = redis.Redis.from_url(ENV_REDIS_URL)
        keys = list(client.scan_iter(match=overrides["MTT_RATE_LIMIT_KEY_PREFIX"] + "*"))
        if keys:
            client.delete(*keys)


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


# --- The acceptance test: several processes, one budget ----------------------------------------------


def _worker(
    overrides: dict[str, Any] | None,
    calls: int,
    start: Any,
    out: Any,
) -> None:
    if overrides is not None:  # spawned: a fresh interpreter that must set Django up itself
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mttcrm.settings")
        import django

        django.setup()
        override_settings(**overrides).enable()
    grants: list[tuple[float, bool]] = []
    start.wait(30)
    for i in range(calls):
        priority = i % 3 == 0
        ratelimit.acquire(1, priority=priority)
        grants.append((time.time(), priority))
    out.put(grants)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_processes_share_the_budget(backend: dict[str, Any], start_method: str) -> None:
    if start_method == "spawn" and backend["name"] == "redis":
        pytest.skip("spawn is exercised on the local backend; fork covers Redis")
    # The parent holds limiter objects before forking: the children must not reuse them.
    ratelimit.acquire(1)
    first_grant = time.time()
    ctx: Any = mp.get_context(start_method)
    start, out = ctx.Event(), ctx.Queue()
    overrides = None
    if start_method == "spawn":
        overrides = {k: v for k, v in backend.items() if k != "name"}
    per_process = [8, 8, 7, 7]
    procs = [ctx.Process(target=_worker, args=(overrides, n, start, out)) for n in per_process]
    for p in procs:
        p.start()
    time.sleep(0.5 if start_method == "fork" else 3.0)  # let spawned interpreters import Django
    started = time.time()
    start.set()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=10)
        assert p.exitcode == 0

    grants = [g for r in results for g in r]
    assert len(grants) == sum(per_process) == 30
    times = [t for t, _ in grants]
    times.append(first_grant)  # the parent's grant counts too while it is in the window
    assert _max_in_window(times) <= LIMIT
    # Ordinary requests alone never take the reserved permit.
    assert _max_in_window([t for t, prio in grants if not prio]) <= LIMIT - 1
    # 30 grants at 5 per window cannot take less than 5 whole windows.
    assert max(times) - started >= 5 * WINDOW - 0.2


# --- Priority, max_wait, penalize -----------------------------------------------------------------


def test_ordinary_requests_leave_one_permit_for_priority(backend: dict[str, Any]) -> None:
    for _ in range(LIMIT - 1):
        assert ratelimit.acquire(1, max_wait=0) < 0.5
    with pytest.raises(MttRateLimited):
        ratelimit.acquire(1, max_wait=0)
    # The reserved permit: a routing command goes at once.
    assert ratelimit.acquire(1, priority=True, max_wait=0) < 0.5
    with pytest.raises(MttRateLimited):
        ratelimit.acquire(1, priority=True, max_wait=0)


def test_priority_gets_through_ordinary_saturation(backend: dict[str, Any]) -> None:
    stop = threading.Event()
    ordinary: list[float] = []
    lock = threading.Lock()

    def hammer() -> None:
        while not stop.is_set():
            ratelimit.acquire(1, max_wait=10)
            with lock:
                ordinary.append(time.time())

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        waits = []
        for _ in range(4):
            waits.append(ratelimit.acquire(1, priority=True, max_wait=5))
            time.sleep(0.4)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    # Ordinary traffic saturated its share, yet each routing command waited at most one window.
    assert len(ordinary) >= 8
    assert max(waits) < WINDOW + 0.3
    assert _max_in_window(ordinary) <= LIMIT - 1


def test_returns_the_seconds_waited(backend: dict[str, Any]) -> None:
    for _ in range(LIMIT - 1):
        ratelimit.acquire(1)
    waited = ratelimit.acquire(1, max_wait=5)
    assert 0.8 * WINDOW <= waited <= WINDOW + 0.3


def test_max_wait_fails_fast_with_retry_after(backend: dict[str, Any]) -> None:
    for _ in range(LIMIT):
        ratelimit.acquire(1, priority=True)
    t0 = time.monotonic()
    with pytest.raises(MttRateLimited) as info:
        ratelimit.acquire(1, priority=True, max_wait=0.3)
    # No point sleeping until the deadline when the next permit is known to come later.
    assert time.monotonic() - t0 < 0.2
    assert 0.3 < info.value.retry_after <= WINDOW + 0.05


def test_integrations_have_separate_budgets(backend: dict[str, Any]) -> None:
    for _ in range(LIMIT):
        ratelimit.acquire(1, priority=True)
    assert ratelimit.acquire(2, priority=True, max_wait=0) < 0.5


def _penalize_in_child(seconds: float) -> None:
    ratelimit.penalize(1, seconds)


def test_penalize_holds_off_ordinary_requests_in_every_process(backend: dict[str, Any]) -> None:
    ratelimit.acquire(1)  # the parent has its objects already
    child = mp.get_context("fork").Process(target=_penalize_in_child, args=(1.0,))
    child.start()
    child.join(timeout=10)
    assert child.exitcode == 0

    with pytest.raises(MttRateLimited) as info:
        ratelimit.acquire(1, max_wait=0.2)
    assert 0.5 < info.value.retry_after <= 1.05
    # Routing commands are not held off (they are worthless after the 5 s of parking).
    assert ratelimit.acquire(1, priority=True, max_wait=0) < 0.5
    # Another integration is not affected.
    assert ratelimit.acquire(2, max_wait=0) < 0.5
    # Honoured, not hammered: the ordinary request goes once the penalty is over.
    waited = ratelimit.acquire(1, max_wait=3)
    assert 0.5 < waited <= 1.2


def test_penalize_keeps_the_later_deadline(backend: dict[str, Any]) -> None:
    ratelimit.penalize(1, 2.0)
    ratelimit.penalize(1, 0.2)
    with pytest.raises(MttRateLimited) as info:
        ratelimit.acquire(1, max_wait=1.0)
    assert info.value.retry_after > 1.5
    ratelimit.penalize(1, 0)  # nothing to do


# --- Process-local details ------------------------------------------------------------------------


def _child_entry_is_fresh(parent_pid: int, out: Any) -> None:
    parents = [e for k, e in ratelimit._stores.items() if k[0] == parent_pid]
    mine = ratelimit._store(1)
    out.put(bool(parents) and all(mine is not e for e in parents))


def test_forked_child_builds_its_own_objects(backend: dict[str, Any]) -> None:
    ratelimit.acquire(1)
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_entry_is_fresh, args=(os.getpid(), out))
    child.start()
    assert out.get(timeout=10) is True
    child.join(timeout=10)


def test_local_backend_keeps_its_files_in_var_dir(tmp_path: Path) -> None:
    with override_settings(REDIS_URL="", VAR_DIR=tmp_path):
        ratelimit.acquire(7)
    assert (tmp_path / "ratelimit" / "mtt-7.sqlite3").exists()


def test_unreachable_redis_falls_back_to_the_local_limiter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis down must not stop every request to MTT (routing commands included): the machine's own
    limiter counts meanwhile, and Redis is tried again after REDIS_RETRY_SECONDS."""
    monkeypatch.setattr(ratelimit, "_redis_fallback", (0, 0.0))
    unreachable = {
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "MTT_RATE_LIMIT_KEY_PREFIX": "x:",
        "VAR_DIR": tmp_path,
    }
    with override_settings(**unreachable):
        assert ratelimit.acquire(1, max_wait=0) < 1.0
        assert (tmp_path / "ratelimit" / "mtt-1.sqlite3").exists()
        # The local limiter really limits: the ordinary budget (limit - 1) is spent, then no permit.
        for _ in range(3):
            ratelimit.acquire(1, max_wait=0)
        with pytest.raises(MttRateLimited):
            ratelimit.acquire(1, max_wait=0)
        # penalize is best effort and lands in the local store too: it never raises.
        ratelimit.penalize(1, 1.0)
        # After the retry period Redis is tried again (and, still down, the fallback continues).
        monkeypatch.setattr(ratelimit, "_redis_fallback", (0, 0.0))
        assert ratelimit._signature(1)[0] == "redis"
        ratelimit.acquire(2, max_wait=0)
        assert ratelimit._signature(2)[0] == "local"


def test_a_broken_local_store_is_a_transient_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with override_settings(REDIS_URL="", VAR_DIR=blocker), pytest.raises(MttTransientError) as info:
        ratelimit.acquire(1)
    assert not isinstance(info.value, MttRateLimited)


# --- The priority ladder: routing, then click-to-call, then sync, then downloads -------------------

Priority = ratelimit.Priority


def test_each_class_leaves_one_more_permit_to_the_classes_above(backend: dict[str, Any]) -> None:
    # The ceilings with the default 5: downloads 2, sync 3, click-to-call 4, routing 5.
    granted = []
    for priority in (Priority.DOWNLOAD, Priority.SYNC, Priority.CLICK_TO_CALL, Priority.ROUTING):
        while True:
            try:
                ratelimit.acquire(1, priority=priority, max_wait=0)
            except MttRateLimited:
                break
            granted.append(priority)
    assert granted == [
        Priority.DOWNLOAD,
        Priority.DOWNLOAD,
        Priority.SYNC,
        Priority.CLICK_TO_CALL,
        Priority.ROUTING,
    ]


def test_the_old_boolean_priority_still_means_routing_and_ordinary(backend: dict[str, Any]) -> None:
    assert ratelimit.as_priority(True) is Priority.ROUTING
    assert ratelimit.as_priority(False) is ratelimit.ORDINARY is Priority.CLICK_TO_CALL
    for _ in range(LIMIT - 1):
        ratelimit.acquire(1, priority=False, max_wait=0)
    with pytest.raises(MttRateLimited):
        ratelimit.acquire(1, priority=Priority.CLICK_TO_CALL, max_wait=0)
    assert ratelimit.acquire(1, priority=True, max_wait=0) < 0.5


@pytest.mark.parametrize(
    ("limit", "ceilings"),
    [(5, [5, 4, 3, 2]), (10, [10, 9, 8, 7]), (3, [3, 2, 1, 1]), (1, [1, 1, 1, 1])],
)
def test_ceilings_never_fall_below_one(limit: int, ceilings: list[int]) -> None:
    assert list(ratelimit._ceilings(limit).values()) == ceilings


def test_a_429_holds_off_every_class_but_routing(backend: dict[str, Any]) -> None:
    ratelimit.penalize(1, 2.0)
    for priority in (Priority.CLICK_TO_CALL, Priority.SYNC, Priority.DOWNLOAD):
        with pytest.raises(MttRateLimited):
            ratelimit.acquire(1, priority=priority, max_wait=0)
    assert ratelimit.acquire(1, priority=Priority.ROUTING, max_wait=0) < 0.5


def test_a_sweep_of_100_downloads_never_delays_a_routing_command(backend: dict[str, Any]) -> None:
    """Issue 17's acceptance on the limiter itself: 100 downloads queued for permits at once take at
    most 2 of each window's 5, so the classes above get theirs at once (``max_wait=0``: no waiting at
    all, whatever the threads' timing), and a routing command arriving on a full window waits at most
    one window."""
    stop = threading.Event()
    granted: list[float] = []
    lock = threading.Lock()

    def download() -> None:
        while not stop.is_set():
            try:
                ratelimit.acquire(1, priority=Priority.DOWNLOAD, max_wait=2.0)
            except MttRateLimited:
                continue
            with lock:
                granted.append(time.monotonic())
            return

    threads = [threading.Thread(target=download) for _ in range(100)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 10
        while len(granted) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(granted) >= 2  # the downloads are taking their share
        # Whatever the downloads hold (at most 2), one of each class above still goes at once...
        ratelimit.acquire(1, priority=Priority.SYNC, max_wait=0)
        ratelimit.acquire(1, priority=Priority.CLICK_TO_CALL, max_wait=0)
        ratelimit.acquire(1, priority=Priority.ROUTING, max_wait=0)
        # ...and with the window now full, the next routing command still gets the first permit that
        # frees up: the downloads (2 or more in the window) cannot take it.
        # (Three windows of grace for a busy machine's scheduling: without the ladder it would wait for
        # the whole sweep, twenty windows and more, and raise MttRateLimited here.)
        ratelimit.acquire(1, priority=Priority.ROUTING, max_wait=3 * WINDOW)
        still_queued = 100 - len(granted)
        assert still_queued > 80  # a sweep, not a trickle: the routing commands did not wait for it
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
