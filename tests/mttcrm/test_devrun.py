"""`make run` at a terminal: it starts quietly, Ctrl-Z does not freeze it, and Ctrl-C stops the whole stack
with exit status 0.

The real command, as a newcomer types it: `make run` in a pseudo-terminal (so that Ctrl-C is the terminal's
interrupt character, sent to its foreground process group), on SQLite and the filesystem broker, with the
state in a temporary folder and free ports.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mttcrm import devrun
from tests.ports import free_ports

BASE_DIR = Path(__file__).resolve().parents[2]

# Run in a process of its own: pty.fork() in the test process would fork pytest's threads.
TERMINAL = r"""
import json, os, pty, select, signal, time, urllib.request

def read(fd, seconds, stop=None):
    out, until = b"", time.monotonic() + seconds
    while time.monotonic() < until:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the terminal closed: every process of the session is gone
                return out
            if not data:
                return out
            out += data
            if stop and stop in out:
                return out
    return out

pid, fd = pty.fork()
if pid == 0:
    os.execvp("make", ["make", "run"])
started = read(fd, 240, b"Ctrl-C stops everything.")
ready = b"Ctrl-C stops everything." in started
time.sleep(2.0)
os.write(fd, b"\x1a")  # Ctrl-Z: ignored, the stack keeps serving
time.sleep(1.0)
try:  # an answer, not just a connection: a stopped process's socket still accepts
    with urllib.request.urlopen(f"http://127.0.0.1:{os.environ['PORT']}/ping", timeout=3) as response:
        serving_after_ctrl_z = response.status == 200
except OSError:
    serving_after_ctrl_z = False
os.write(fd, b"\x03")
stopped, status, hung = b"", None, False
deadline = time.monotonic() + 60
while status is None and time.monotonic() < deadline:
    stopped += read(fd, 0.5)
    done, code = os.waitpid(pid, os.WNOHANG)
    status = code if done else None
if status is None:  # make still waits: stop what is left of the session, to report rather than hang
    hung = True
    for group in {os.tcgetpgrp(fd), pid}:
        for sig in (signal.SIGKILL, signal.SIGCONT):
            try:
                os.killpg(group, sig)
            except OSError:
                pass
    _, status = os.waitpid(pid, 0)
print(json.dumps({
    "ready": ready,
    "serving_after_ctrl_z": serving_after_ctrl_z,
    "hung": hung,
    "exit_status": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
    "started": started.decode(errors="replace"),
    "stopped": stopped.decode(errors="replace"),
}))
"""


def _newcomer(tmp_path: Path) -> tuple[dict[str, int], dict[str, str]]:
    """Free ports, and a newcomer's environment with them: none of the test suite's settings or services, no
    outer make's flags, the state in ``tmp_path``."""
    ports = dict(zip(("PORT", "WS_PORT", "SANDBOX_PORT"), free_ports(3), strict=True))
    dropped = {
        "VAR_DIR",
        "MEDIA_ROOT",
        "SITE_URL",
        "SANDBOX_URL",
        "WEBSOCKET_URL",
        "MAKEFLAGS",
        "MFLAGS",
        "MAKELEVEL",
    }
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CELERY_", "PYTEST", "MTTCRM_"))
        and key not in dropped
    }
    env.update({key: str(value) for key, value in ports.items()})
    env["VAR_DIR"] = str(tmp_path / "var")
    return ports, env


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_make_run_starts_quietly_and_ctrl_c_stops_everything_with_status_0(tmp_path: Path) -> None:
    ports, env = _newcomer(tmp_path)

    result = subprocess.run(
        [sys.executable, "-c", TERMINAL], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=400
    )
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    output = run["started"] + run["stopped"]

    assert run["ready"], f"the stack did not come up:\n{output[-3000:]}"
    assert run["serving_after_ctrl_z"], "Ctrl-Z stopped the stack (make would keep the terminal)"
    # Ctrl-C: every process stopped by itself, make exited with the stack's status (not killed by SIGINT).
    assert not run["hung"], f"make still ran a minute after Ctrl-C:\n{output[-3000:]}"
    assert run["signal"] is None and run["exit_status"] == 0, output[-3000:]
    assert "Stopping…" in run["stopped"]
    assert "Traceback" not in output, output[-5000:]
    assert "make: ***" not in output
    lines = [line for line in output.splitlines() if " WARNING " in line or " ERROR " in line]
    assert lines == [], "\n".join(lines)
    assert not any(_answers(port) for port in ports.values()), "a process still listens after Ctrl-C"


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``, with their command lines (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def _read_until(proc: subprocess.Popen[str], text: str, seconds: float) -> str:
    out, deadline = "", time.monotonic() + seconds
    assert proc.stdout is not None
    while time.monotonic() < deadline and text not in out:
        if not select.select([proc.stdout], [], [], 0.5)[0]:
            continue
        line = proc.stdout.readline()
        if not line:
            break
        out += line
    return out


def test_a_process_that_dies_is_started_again_and_the_stack_keeps_serving(tmp_path: Path) -> None:
    # As docker compose's restart policy does: the worker killed (OOM, a crash), make run starts it again
    # and the rest of the stack goes on; a stop afterwards is still clean.
    ports, env = _newcomer(tmp_path)
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mttcrm.devrun"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output = _read_until(proc, "Ctrl-C stops everything.", 240)
        assert "Ctrl-C stops everything." in output, output[-3000:]
        workers = [pid for pid, cmd in _children(proc.pid).items() if " worker" in cmd and "celery" in cmd]
        assert len(workers) == 1, _children(proc.pid)
        os.kill(workers[0], signal.SIGKILL)

        output += _read_until(proc, "starting it again.", 30)
        assert "!! worker exited with code -9; starting it again." in output, output[-3000:]
        deadline = time.monotonic() + 60
        again: list[int] = []
        while time.monotonic() < deadline and not again:
            again = [pid for pid, cmd in _children(proc.pid).items() if " worker" in cmd and "celery" in cmd]
            time.sleep(0.5)
        assert again and again != workers, "no new worker"
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['PORT']}/ping", timeout=5) as response:
            assert response.status == 200
        assert proc.poll() is None, "the stack stopped"
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest[-3000:]
    assert not any(_answers(port) for port in ports.values()), "a process still listens after the stop"


def test_the_pages_find_daphne_even_with_a_blank_websocket_url_from_a_copied_env_example() -> None:
    # .env.example lists WEBSOCKET_URL blank; the settings read it into the environment make run hands on.
    assert devrun.websocket_url({"WEBSOCKET_URL": ""}, ws_port=8102) == "ws://127.0.0.1:8102"
    assert devrun.websocket_url({}, ws_port=8102) == "ws://127.0.0.1:8102"
    assert (
        devrun.websocket_url({"WEBSOCKET_URL": "wss://crm.example.com"}, ws_port=8102)
        == "wss://crm.example.com"
    )
