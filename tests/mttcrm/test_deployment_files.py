"""No Docker engine runs here, so the compose file is checked for what can be checked without one."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from django.core.management import get_commands

from mttcrm.devrun import commands

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_compose_runs_the_same_kinds_of_process_as_make_run() -> None:
    """docker compose and `make run` (mttcrm/devrun.py) start the same programs for the same roles."""
    services = compose()["services"]
    lines = commands(
        py="python", settings=SimpleNamespace(PORT=8000, WS_PORT=8001, SANDBOX_PORT=8002, VAR_DIR="var")
    )
    for role in ("web", "ws", "applier", "worker", "beat"):
        program = lines[role][2] if lines[role][1] == "-m" else lines[role][1]
        assert program in services[role]["command"][:3], (role, services[role]["command"])
    web = services["web"]
    assert web["environment"]["DATABASE_URL"].startswith("postgres://")
    assert web["environment"]["REDIS_URL"].startswith("redis://")


def test_compose_commands_exist() -> None:
    commands = get_commands()
    for name, service in compose()["services"].items():
        command = service.get("command") or []
        if command[:2] == ["python", "manage.py"]:
            assert command[2] in commands, f"{name}: no management command {command[2]!r}"
        if command[:1] == ["daphne"]:
            assert command[-1] == "mttcrm.asgi:application"
        if command[:1] == ["gunicorn"]:
            assert command[-1] == "mttcrm.wsgi:application"


def test_dockerfile_copies_every_app() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("mttcrm", "integrations", "calls", "contacts", "sandbox", "monitoring"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_compose_runs_several_web_processes_behind_the_proxy() -> None:
    services = compose()["services"]
    assert {"proxy", "postgres", "redis", "web", "ws", "applier", "worker", "beat", "migrate"} <= set(
        services
    )
    web = services["web"]
    # Scaling web needs it not to publish a fixed host port: the proxy is the way in.
    assert "ports" not in web and "ports" not in services["ws"]
    assert web["deploy"]["replicas"] >= 2 and services["ws"]["deploy"]["replicas"] >= 2
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["beat"]["deploy"]["replicas"] == 1
    assert web["environment"]["DEBUG"].endswith("false}")
    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy:")
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert (ROOT / "deploy" / "Caddyfile").is_file()
    # The web processes trust exactly the proxy's fixed address, inside the fixed subnet.
    proxy_ip = proxy["networks"]["default"]["ipv4_address"]
    assert web["environment"]["TRUSTED_PROXIES"] == proxy_ip
    assert web["environment"]["BEHIND_TLS_PROXY"] == "true"
    subnet = compose()["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(proxy_ip) in ipaddress.ip_network(subnet)


def test_every_volume_under_var_exists_in_the_image_owned_by_the_app() -> None:
    """Docker gives a new named volume the owner of its mount point in the image; a point the image
    lacks becomes a root-owned volume the app (uid 10001) cannot write to."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    made = next(line for line in dockerfile.splitlines() if "mkdir -p" in line).split()
    assert "chown -R app /app/var" in dockerfile
    targets = {
        volume.split(":")[1]
        for service in compose()["services"].values()
        for volume in service.get("volumes", [])
        if isinstance(volume, str) and volume.split(":")[1].startswith("/app/var/")
    }
    assert targets == {"/app/var/media", "/app/var/metrics", "/app/var/spool"}
    assert targets <= set(made)


def test_secrets_and_local_state_stay_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".venv", "var", ".git"):
        assert entry in ignored


def test_compose_config_is_valid() -> None:
    """`docker compose config` itself, when a Compose v2 binary is at hand (`make compose-check` puts
    one in var/tools; CI runs it before the tests)."""
    binaries = sorted((ROOT / "var" / "tools").glob("docker-compose-*"))
    if binaries:
        command = [str(binaries[-1])]
    elif shutil.which("docker-compose"):
        command = ["docker-compose"]
    else:
        pytest.skip("no Compose v2 binary: run `make compose-check`")
    version = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=60, check=False)
    if "v2." not in version.stdout:
        pytest.skip(f"not Compose v2: {version.stdout.strip()}")
    result = subprocess.run(
        [
            *command,
            "--project-directory",
            str(ROOT),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_readme_table_names_every_compose_service_and_its_program() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running the full stack with docker compose", 1)[1].split("```", 1)[0]
    rows: dict[str, str] = {}
    for names, what in re.findall(r"^\| ((?:`[a-z]+`(?:, )?)+) \| (.*?) \|", section, re.M):
        rows.update(dict.fromkeys(re.findall(r"`([a-z]+)`", names), what))
    for name, service in compose()["services"].items():
        assert name in rows, f"README's compose table lacks {name}"
        program = str(service.get("command", [""])[0])
        if program in ("gunicorn", "daphne"):
            assert program in rows[name].lower(), (name, rows[name])
