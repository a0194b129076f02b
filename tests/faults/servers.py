"""Private, throw-away PostgreSQL and Redis servers for fault tests and ``bench/faults.py``.

The machine's own PostgreSQL (5432) and Redis (6379) are shared: a fault test must never stop them.
These start their own servers on free ports, in a temporary directory, and stop/start them at will.
``initdb``/``pg_ctl`` refuse to run as root, so as root they run as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.ports import free_port


def postgres_bin() -> Path | None:
    """The directory of initdb/pg_ctl (newest installed major version), or None."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major, reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _major(path: str) -> int:
    try:
        return int(Path(path).parent.name)
    except ValueError:
        return 0


def redis_server() -> str | None:
    return shutil.which("redis-server")


def missing_postgres_reason() -> str | None:
    if postgres_bin() is None:
        return "no initdb/pg_ctl (apt-get install postgresql) for a private PostgreSQL"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run initdb as"
    return None


def missing_redis_reason() -> str | None:
    return None if redis_server() else "no redis-server (apt-get install redis-server) for a private Redis"


def _wait_port(port: int, *, up: bool, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return True
        except OSError:
            if not up:
                return True
        time.sleep(0.05)
    return False


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of our own: ``start()``, ``stop()`` (fast: clients are disconnected)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mttcrm-pg-")))
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        bindir = postgres_bin()
        if bindir is None:
            raise RuntimeError(missing_postgres_reason())
        self.bindir = bindir
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log = self.root / "postgres.log"
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            self._user = {"user": entry.pw_uid, "group": entry.pw_gid}
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.sockets.mkdir()
        if self._user:
            os.chown(self.sockets, self._user["user"], self._user["group"])
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
            cwd=self.root,
            **self._user,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        result = self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")
        if not _wait_port(self.port, up=True, timeout=30):
            raise RuntimeError(f"private PostgreSQL did not start: {result.stdout} {result.stderr}")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)
        _wait_port(self.port, up=False, timeout=30)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def create_database(self, name: str) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.database_url(name)

    def destroy(self) -> None:
        if self.data.exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class PrivateRedis:
    """A Redis of our own with no persistence: ``stop()`` loses its data, as a crash would."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mttcrm-redis-")))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        binary = redis_server()
        if binary is None:
            raise RuntimeError(missing_redis_reason())
        self.binary = binary
        self.log = self.root / "redis.log"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*args, "--daemonize", "no", "--dir", str(self.root)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not _wait_port(self.port, up=True, timeout=30):
            raise RuntimeError(f"private Redis did not start: {self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)
        _wait_port(self.port, up=False, timeout=15)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def redis_env(redis: PrivateRedis) -> dict[str, str]:
    return {
        "REDIS_URL": redis.url(0),
        "CELERY_BROKER_URL": redis.url(0),
        "LOG_LEVEL": "INFO",
    }
