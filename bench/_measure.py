"""What the benchmarks measure with: latency percentiles, and CPU time — of a process, of the services
the stack uses (PostgreSQL, Redis), of the whole machine, and of each role of a `bench_stack`
(`CpuMeter`) — read from Linux /proc."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _common import Stack


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return f"p50 {q[49]:.2f} / p95 {q[94]:.2f} / p99 {q[98]:.2f} / max {ordered[-1]:.2f} ms"


def box_busy() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine so far (Linux /proc/stat)."""
    values = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_cpu(command: str) -> dict[int, float]:
    """CPU so far of every process named ``command`` on the machine (``postgres``: the server and each
    connection's backend; ``redis-server``), by pid. The services are the machine's, so whatever else
    uses them is counted too: measure on a quiet machine."""
    out = {}
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == command:
                out[int(comm.parent.name)] = cpu_seconds(int(comm.parent.name))
        except OSError:
            continue
    return out


def service_cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two ``service_cpu`` readings (a backend that started meanwhile counts whole,
    one that ended meanwhile is missed: with connection pools, both are rare)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


class CpuMeter:
    """CPU used between start() and stop(): each role of the stack and this process in % of one core,
    and the whole machine ("box") in % of all its cores."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.before: dict[str, list[tuple[int, float]]] = {}
        self.started = 0.0
        self.client = 0.0
        self.box = (0.0, 0.0)
        self.services: dict[str, dict[int, float]] = {}

    def start(self) -> None:
        self.before = {
            role: [(pid, cpu_seconds(pid)) for pid in pids] for role, pids in self.stack.processes().items()
        }
        self.services = {name: service_cpu(name) for name in ("postgres", "redis-server")}
        self.client = time.process_time()
        self.box = box_busy()
        self.started = time.perf_counter()

    def per_call(self, calls: int) -> dict[str, float]:
        """Core-seconds per call of each role of the stack between start() and now, and their "total":
        the servers, PostgreSQL and Redis — not the sandbox (it stands for MTT) nor this process."""
        wall = max(1e-9, time.perf_counter() - self.started)
        used = {role: percent * wall / 100 for role, percent in self.stop().items()}
        out = {
            role: seconds / max(1, calls)
            for role, seconds in used.items()
            if role not in ("sandbox", "client", "box")
        }
        out["total"] = sum(out.values())
        return out

    def stop(self) -> dict[str, float]:
        wall = max(1e-9, time.perf_counter() - self.started)
        out = {
            role: sum(cpu_seconds(pid) - before for pid, before in pids) / wall * 100
            for role, pids in self.before.items()
        }
        for name, before in self.services.items():
            out[name.removesuffix("-server")] = service_cpu_used(before, service_cpu(name)) / wall * 100
        out["client"] = (time.process_time() - self.client) / wall * 100
        busy, total = box_busy()
        out["box"] = (busy - self.box[0]) / max(1.0, total - self.box[1]) * 100
        return out
