"""A fresh process of the project, for what is fixed once the settings load (a setting read at start-up, the
storages, the logging, the system checks): the tests of tests/mttcrm run Python code or a manage.py command in
it, with this process's environment minus what must not leak into it, and their own variables on top."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fresh_env(settings: Mapping[str, str] | None = None, *, without: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment without the variables whose names start with one of ``without``, then
    DJANGO_SETTINGS_MODULE (the project's settings) and ``settings``, in that order."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(without)}
    env["DJANGO_SETTINGS_MODULE"] = "mttcrm.settings"
    env.update(settings or {})
    return env


def run_python(
    code: str, env: Mapping[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -c code args…`` in the project's folder; the output captured as text, the exit status left
    to the test."""
    return _run([sys.executable, "-c", code, *args], env, timeout)


def run_manage(
    args: list[str], env: Mapping[str, str], *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python manage.py args…``, as run_python runs code."""
    return _run([sys.executable, "manage.py", *args], env, timeout)


def _run(command: list[str], env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
