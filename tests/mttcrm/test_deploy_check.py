"""`manage.py check --deploy` with README's production settings: no warning. Without them: warnings."""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

from cryptography.fernet import Fernet

from tests.mttcrm.settings_probe import ROOT, fresh_env, run_manage


def readme_production_settings() -> dict[str, str]:
    """The ```ini block under README's "Production settings (HTTPS)" heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Production settings (HTTPS)", 1)[1]
    block = re.search(r"```ini\n(.*?)```", section, re.S)
    assert block, "README: the production settings block"
    pairs = (line.split("=", 1) for line in block.group(1).splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def run_check(tmp_path: Path, overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = fresh_env(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "VAR_DIR": str(tmp_path / "var"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "REDIS_URL": "",
            "CELERY_BROKER_URL": "filesystem://",
            **overrides,
        },
        # Nothing of this test process's own configuration leaks into the check.
        without=("DJANGO_", "DATABASE_", "REDIS_", "SECURE_", "CSRF_", "SESSION_"),
    )
    return run_manage(["check", "--deploy", "--fail-level", "WARNING"], env)


def secrets_for_production() -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_urlsafe(64),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }


def test_readme_production_settings_pass_with_no_warning(tmp_path: Path) -> None:
    settings = readme_production_settings()
    assert settings["DEBUG"] == "false"
    assert {"SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE"} <= set(settings)
    result = run_check(tmp_path, {**settings, **secrets_for_production()})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "security.W" not in output, output


def test_without_the_https_settings_it_warns(tmp_path: Path) -> None:
    result = run_check(
        tmp_path,
        {
            "DEBUG": "false",
            "ALLOWED_HOSTS": "crm.example.com",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "0",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            **secrets_for_production(),
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in output, output


def test_half_done_hsts_warns(tmp_path: Path) -> None:
    settings = {
        **readme_production_settings(),
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "false",
        "SECURE_HSTS_PRELOAD": "false",
        **secrets_for_production(),
    }
    output = run_check(tmp_path, settings)
    assert output.returncode != 0
    assert "security.W005" in output.stdout + output.stderr
    assert "security.W021" in output.stdout + output.stderr


def test_a_weak_secret_key_warns(tmp_path: Path) -> None:
    settings = {**readme_production_settings(), **secrets_for_production(), "SECRET_KEY": "short"}
    output = run_check(tmp_path, settings)
    assert output.returncode != 0
    assert "security.W009" in output.stdout + output.stderr


# --- mail (issue 18, probe 8): password-reset links must not reach the logs ------------------------


def test_the_console_mail_backend_fails_the_deploy_check(tmp_path: Path) -> None:
    for url in ("consolemail://", "filemail:///tmp/mttcrm-mail"):
        settings = {**readme_production_settings(), **secrets_for_production(), "EMAIL_URL": url}
        output = run_check(tmp_path, settings)
        assert output.returncode != 0, url
        assert "mttcrm.E001" in output.stdout + output.stderr, url


def test_mail_that_goes_nowhere_warns(tmp_path: Path) -> None:
    settings = {**readme_production_settings(), **secrets_for_production(), "EMAIL_URL": "dummymail://"}
    output = run_check(tmp_path, settings)
    assert output.returncode != 0
    assert "mttcrm.W001" in output.stdout + output.stderr


def test_the_readme_documents_a_real_smtp_server() -> None:
    assert readme_production_settings()["EMAIL_URL"].startswith("smtp+tls://")


def test_the_repositorys_development_secret_key_is_refused_without_debug(tmp_path: Path) -> None:
    # README: with DEBUG=false SECRET_KEY is required. The default is public, and Django's own W009 passes it
    # (long, varied, no "django-insecure" prefix). Plain `check` (what migrate runs) refuses it, not only
    # --deploy; a key of one's own passes.
    base = {
        "DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "VAR_DIR": str(tmp_path / "var"),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    without = ("DJANGO_", "DATABASE_", "REDIS_", "CELERY_", "SECRET_KEY", "DEBUG")
    refused = run_manage(["check"], fresh_env(base, without=without))
    assert refused.returncode != 0
    assert "mttcrm.E003" in refused.stdout + refused.stderr
    own = run_manage(["check"], fresh_env({**base, "SECRET_KEY": secrets.token_urlsafe(50)}, without=without))
    assert own.returncode == 0, own.stdout + own.stderr
    assert "mttcrm.E003" not in own.stdout + own.stderr
