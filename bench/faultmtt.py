"""bench/faults.py's scenario 4: MTT failing (500s, 429s, hanging) while parked calls are routed, the
directory syncs, tokens refresh and recordings download."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from faultstack import (
    LINE,
    MANAGED_CLIENTS,
    CallPlayer,
    Stack,
    log,
    notification_report,
    wait_for,
)

from sandbox.testing import running_sandbox
from tests.faults.servers import PrivatePostgres, PrivateRedis

# --- 4. MTT ------------------------------------------------------------------------------------------


def scenario_mtt(work: Path, pg: PrivatePostgres, redis: PrivateRedis, fault: float) -> dict[str, Any]:
    with running_sandbox(step_delay=0.5, notify_timeout=10) as sandbox:
        stack = Stack(work, pg, redis, sandbox, "mtt")
        try:
            stack.start()
            stack.manage(
                "shell",
                "-c",
                "from integrations.parking import external_numbers_set_parking as p; "
                "from integrations.models import Integration; "
                f"p(integration=Integration.objects.get(), numbers=['{LINE}'], is_parking=True)",
            )
            deadline_s = 4.5
            phase = fault / 3
            callers = [*MANAGED_CLIENTS, None]
            with CallPlayer(
                sandbox, every=3.0, step_delay=0.5, callers=[c or "+79990001122" for c in callers]
            ) as player:
                time.sleep(9)
                log(f"mtt: MTT failing for {fault:.0f} s (500s, then 429s, then hanging)")
                fault_started = time.monotonic()
                sandbox.control("POST", "expire-tokens")
                plan = [
                    {"status": 500},
                    {"status": 429, "retry_after": 5},
                    {"delay": 12},  # past MTT_READ_TIMEOUT (10 s) and the 5 s of parking
                ]
                for spec in plan:
                    for path in ("*", "/oauth/token", "/records/*"):
                        sandbox.control("POST", "faults", {"path": path, "seconds": phase, **spec})
                    # A change in the PBX's directory: a sync that has to get through.
                    sandbox.control("POST", "scenario", {"scenario": "workplaces_changed"})
                    time.sleep(phase)
                fault_ended = time.monotonic()
                log("mtt: MTT answers again")
                time.sleep(20)
            sandbox.control("POST", "scenario", {"scenario": "workplaces_changed"})
            wait_for(lambda: sum(player.delivered().values()) >= player.started * 7, 60, "the last calls")
            _, settled = wait_for(lambda: stack.inbox().get("pending", 0) == 0, 120, "the inbox to settle")
            _, stored_in = wait_for(
                lambda: set(stack.recordings()) <= {"stored"}, 400, "every recording stored", every=2
            )
            decisions = stack.sql(
                "SELECT decision, received_at, sent_at FROM calls_routingdecision ORDER BY received_at"
            )
            late = [d for d in decisions if d[2] is not None and (d[2] - d[1]).total_seconds() > deadline_s]
            requests_log = sandbox.control("GET", "requests")
            by_status = Counter(str(r["status"]) for r in requests_log)
            wall = time.time()
            mono = time.monotonic()
            ended_at = wall - (mono - fault_ended)
            first_ok_after = {}
            for method in ("/workplacesInfo", "/transferCall", "/terminateCall"):
                oks = [r for r in requests_log if r["path"] == method and r["status"] == 200]
                after = [
                    _iso_seconds(r["time"]) - ended_at for r in oks if _iso_seconds(r["time"]) > ended_at
                ]
                first_ok_after[method] = round(min(after), 1) if after else None
            status = stack.sql("SELECT status, last_sync_at FROM integrations_integration")
            report = notification_report(stack, player)
            report.update(
                {
                    "fault_s": round(fault_ended - fault_started, 1),
                    "routing_decisions": dict(Counter(d[0] for d in decisions)),
                    "routing_sent_late": len(late),
                    "mtt_requests_by_status": dict(by_status),
                    "first_success_after_fault_s": first_ok_after,
                    "integration_status": status[0][0],
                    "recordings": stack.recordings(),
                    "recordings_all_stored_after_s": round(stored_in, 1),
                    "inbox_settled_after_s": round(settled, 1),
                    "client_retries_logged": stack.logtext("worker").count("retrying in"),
                    "task_retries_logged": len(
                        re.findall(r"Task \S+ retry: Retry in", stack.logtext("worker"))
                    ),
                }
            )
            return report
        finally:
            stack.stop()


def _iso_seconds(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()
