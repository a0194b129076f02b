"""Shared by the benchmarks: a throw-away PostgreSQL database next to the one in DATABASE_URL."""

from __future__ import annotations

import socket
import statistics
import sys
import time
from urllib.parse import urlsplit, urlunsplit


def bench_url(url: str, suffix: str = "_bench") -> tuple[str, str, str]:
    """(the bench database URL, its name, the maintenance URL to create/drop it from)."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        sys.exit(f"DATABASE_URL must point at PostgreSQL, not {parts.scheme!r}")
    name = parts.path.lstrip("/") or "postgres"
    bench_name = f"{name}{suffix}"
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    return urlunsplit(parts._replace(path="/" + bench_name)), bench_name, maintenance


def recreate_database(maintenance_url: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg
    from psycopg import sql

    assert "_bench" in name, name  # never anything but our own database
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return f"p50 {q[49]:.2f} / p95 {q[94]:.2f} / p99 {q[98]:.2f} / max {ordered[-1]:.2f} ms"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Poll until the server at url answers anything (exit the benchmark if it never does)."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                sys.exit(f"the server did not answer at {url}")
            time.sleep(0.2)
