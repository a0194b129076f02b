"""No Docker engine runs here, so the compose file is checked for what can be checked without one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_compose_has_the_production_shaped_stack() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "sandbox"} <= set(services)
    web = services["web"]
    assert web["command"][:1] == ["daphne"]
    assert web["environment"]["DATABASE_URL"].startswith("postgres://")
    assert web["environment"]["REDIS_URL"].startswith("redis://")
    assert services["worker"]["command"][:4] == ["celery", "-A", "mttcrm", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "mttcrm", "beat"]


def test_compose_commands_exist() -> None:
    commands = get_commands()
    for name, service in compose()["services"].items():
        command = service.get("command") or []
        if command[:2] == ["python", "manage.py"]:
            assert command[2] in commands, f"{name}: no management command {command[2]!r}"
        if command[:1] == ["daphne"]:
            assert command[-1] == "mttcrm.asgi:application"


def test_dockerfile_copies_the_apps_and_runs_daphne() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("mttcrm", "integrations", "calls", "contacts", "sandbox"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert "collectstatic" in dockerfile
    assert '"mttcrm.asgi:application"' in dockerfile
