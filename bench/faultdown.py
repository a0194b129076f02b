"""bench/faults.py's scenarios 1 and 2: Redis, then PostgreSQL, stopped for --outage s while calls go on;
an operator's workspace (its socket, its pages) through the outage."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from faultstack import (
    CallPlayer,
    Stack,
    log,
    notification_report,
    wait_for,
)
from screenpop import Socket, ws_open, ws_read

from sandbox.testing import running_sandbox
from tests.faults.servers import PrivatePostgres, PrivateRedis

# --- 1. Redis ------------------------------------------------------------------------------------------


class Workspace:
    """An operator's tab without a browser: static/js/live/connection.js's reconnect and resync."""

    def __init__(self, stack: Stack, session: requests.Session) -> None:
        self.stack, self.session = stack, session
        self.cookie = session.cookies.get("sessionid") or ""
        self.pushed: set[int] = set()
        self.resynced: set[int] = set()
        self.opened: list[float] = []
        self.closed: list[float] = []
        self.pushes: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            sock: Socket | None
            try:
                sock = await asyncio.wait_for(
                    ws_open(
                        "127.0.0.1", self.stack.ws_port, "/ws/workspace/", self.cookie, 0, self.stack.url
                    ),
                    10,
                )
            except Exception:
                sock = None
            if sock is not None:
                attempt = 0
                self.opened.append(time.monotonic())
                await asyncio.to_thread(self._resync)
                reader = asyncio.create_task(ws_read(sock))
                seen = 0
                while not reader.done() and not self._stop.is_set():
                    await asyncio.sleep(0.1)
                    for _arrived, message in sock.received[seen:]:
                        self.pushes.append(time.monotonic())
                        self.pushed.add(int(message["call"]["id"]))
                    seen = len(sock.received)
                reader.cancel()
                sock.writer.close()
                self.closed.append(time.monotonic())
            # static/js/live/connection.js: 500 ms doubling to 30 s, "equal jitter".
            step = min(10.0, 0.5 * 2**attempt)  # static/js/live/connection.js: BACKOFF_CAP_MS
            attempt += 1
            await asyncio.sleep(step / 2 + (uuid.uuid4().int % 1000) / 1000 * step / 2)

    def _resync(self) -> None:
        try:
            body = self.session.get(self.stack.url + "/calls/active.json", timeout=10).json()
            self.resynced.update(int(c["id"]) for c in body.get("calls", []))
        except (requests.RequestException, ValueError):
            pass

    def _resync_every_30_s(self) -> None:
        # static/js/live/connection.js resyncs every 30 s whether the socket is up or not.
        while not self._stop.wait(30):
            self._resync()

    def __enter__(self) -> Workspace:
        self._thread.start()
        threading.Thread(target=self._resync_every_30_s, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def scenario_redis(work: Path, pg: PrivatePostgres, redis: PrivateRedis, outage: float) -> dict[str, Any]:
    with running_sandbox(step_delay=1.5, notify_timeout=10) as sandbox:
        stack = Stack(work, pg, redis, sandbox, "redis")
        try:
            stack.start()
            workspace = Workspace(stack, stack.login())
            with workspace, CallPlayer(sandbox, every=3.0, step_delay=1.5) as player:
                wait_for(lambda: workspace.opened, 30, "the workspace socket")
                time.sleep(10)
                log(f"redis: stopping Redis for {outage:.0f} s")
                redis.stop()
                down_at = time.monotonic()
                time.sleep(outage)
                redis.start()
                up_at = time.monotonic()
                log("redis: Redis started again")
                time.sleep(20)
            # Every call's notifications delivered (the last call ends ~12 s after it started).
            wait_for(lambda: sum(player.delivered().values()) >= player.started * 7, 60, "the last calls")
            _, settled = wait_for(lambda: stack.inbox().get("pending", 0) == 0, 120, "the inbox to settle")
            _, stored_in = wait_for(
                lambda: set(stack.recordings()) <= {"stored"}, 300, "every recording stored", every=2
            )
            report = notification_report(stack, player)
            reconnected = [t - up_at for t in workspace.opened if t > up_at]
            pushes_after = [t - up_at for t in workspace.pushes if t > up_at]
            # Every call rang the operator's workplace: each one is a card on her screen.
            calls = {row[0] for row in stack.sql("SELECT id FROM calls_call")}
            report.update(
                {
                    "outage_s": round(up_at - down_at, 1),
                    "socket_closed_during_outage": sum(
                        1 for t in workspace.closed if down_at <= t <= up_at + 1
                    ),
                    "reconnected_after_s": round(reconnected[0], 1) if reconnected else None,
                    "first_push_after_s": round(pushes_after[0], 1) if pushes_after else None,
                    "cards_seen_by_push": len(workspace.pushed & calls),
                    "cards_seen_only_by_resync": len((workspace.resynced - workspace.pushed) & calls),
                    "calls_never_on_screen": len(calls - workspace.pushed - workspace.resynced),
                    "calls_total": len(calls),
                    "push_failures_logged": sum(
                        stack.logtext(name).count("Screen pop: push") for name in ("web", "applier")
                    ),
                    "recordings": stack.recordings(),
                    "recordings_all_stored_after_s": round(stored_in, 1),
                    "inbox_settled_after_s": round(settled, 1),
                }
            )
            return report
        finally:
            stack.stop()
            if not redis.running():
                redis.start()


# --- 2. PostgreSQL ---------------------------------------------------------------------------------------


def scenario_postgres(work: Path, pg: PrivatePostgres, redis: PrivateRedis, outage: float) -> dict[str, Any]:
    with running_sandbox(step_delay=1.5, notify_timeout=10) as sandbox:
        stack = Stack(work, pg, redis, sandbox, "postgres")
        try:
            stack.start()
            operator = stack.login()
            pages: list[tuple[float, int, float]] = []
            stop_pages = threading.Event()

            def poll_pages() -> None:
                while not stop_pages.is_set():
                    started = time.monotonic()
                    try:
                        status = operator.get(stack.url + "/", timeout=30).status_code
                    except requests.RequestException:
                        status = 0
                    pages.append((started, status, time.monotonic() - started))
                    stop_pages.wait(1.0)

            pager = threading.Thread(target=poll_pages, daemon=True)
            pager.start()
            spool = stack.work / "var" / "spool"
            with CallPlayer(sandbox, every=3.0, step_delay=1.5) as player:
                time.sleep(10)
                log(f"postgres: stopping PostgreSQL for {outage:.0f} s")
                pg.stop()
                down_at = time.monotonic()
                most_spooled = 0
                while time.monotonic() - down_at < outage:
                    most_spooled = max(most_spooled, len(list(spool.glob("*.json"))))
                    time.sleep(0.5)
                pg.start()
                up_at = time.monotonic()
                log("postgres: PostgreSQL started again")
                _, replayed = wait_for(lambda: not list(spool.glob("*.json")), 120, "the spool replayed", 0.2)
                time.sleep(20)
            stop_pages.set()
            pager.join()
            wait_for(lambda: sum(player.delivered().values()) >= player.started * 7, 60, "the last calls")
            _, settled = wait_for(lambda: stack.inbox().get("pending", 0) == 0, 120, "the inbox to settle")
            _, stored_in = wait_for(
                lambda: set(stack.recordings()) <= {"stored"}, 300, "every recording stored", every=2
            )
            report = notification_report(stack, player)
            during = [(s, d) for t, s, d in pages if down_at <= t <= up_at]
            ok_again = [t - up_at for t, s, _d in pages if t > up_at and s == 200]
            report.update(
                {
                    "outage_s": round(up_at - down_at, 1),
                    "spooled_at_most": most_spooled,
                    "spooled_logged": stack.logtext("web").count("Notification spooled"),
                    "spool_replayed_after_s": round(replayed, 1),
                    "rejected": len(list((spool / "rejected").glob("*.json"))),
                    "pages_during_outage": dict(Counter(s for s, _d in during)),
                    "slowest_page_during_outage_s": round(max((d for _s, d in during), default=0), 2),
                    "pages_200_again_after_s": round(ok_again[0], 1) if ok_again else None,
                    "recordings": stack.recordings(),
                    "recordings_all_stored_after_s": round(stored_in, 1),
                    "inbox_settled_after_s": round(settled, 1),
                }
            )
            return report
        finally:
            stack.stop()
            if not pg.running():
                pg.start()
