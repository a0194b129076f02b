"""Issue 18, probe 8: password-reset links never reach the log, in any shipped configuration.

The probe: the default e-mail backend (and `.env.example`, which compose reads) printed every mail to the
console, reset link included, so whoever reads the logs could take over any account with an address.
Each configuration is loaded the way it runs: a fresh process with only that environment.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.mttcrm.settings_probe import ROOT, fresh_env, run_python

# Sends a real password-reset mail through whatever the settings configure, and prints where files went.
RESET_SCRIPT = """
import django
django.setup()
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.core.management import call_command
call_command("migrate", verbosity=0)
get_user_model().objects.create_user("victim", "victim@example.com", "old-password-123")
form = PasswordResetForm({"email": "victim@example.com"})
assert form.is_valid()
form.save(domain_override="crm.example.com", use_https=True)
print("BACKEND", settings.EMAIL_BACKEND)
"""


def env_example() -> dict[str, str]:
    text = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", text, re.M))


def run(tmp_path: Path, overrides: dict[str, str], script: str) -> subprocess.CompletedProcess[str]:
    env = fresh_env(
        {
            "VAR_DIR": str(tmp_path / "var"),
            "CELERY_BROKER_URL": "filesystem://",
            **overrides,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "REDIS_URL": "",
        },
        without=("DJANGO_", "DATABASE_", "REDIS_", "EMAIL_", "DEBUG"),
    )
    return run_python(script, env, timeout=180)


def test_make_run_writes_the_reset_mail_to_a_file_and_not_to_the_log(tmp_path: Path) -> None:
    result = run(tmp_path, {}, RESET_SCRIPT)  # make run: nothing set, DEBUG on by default
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "filebased.EmailBackend" in output
    assert "/reset/" not in output and "victim@example.com" not in output
    mails = list((tmp_path / "var" / "mail").iterdir())
    assert len(mails) == 1
    assert "https://crm.example.com/accounts/reset/" in mails[0].read_text()


def test_env_example_as_compose_reads_it_prints_no_mail(tmp_path: Path) -> None:
    shipped = env_example()
    assert not shipped["EMAIL_URL"].startswith("consolemail")
    script = "import django; django.setup(); from django.conf import settings; print(settings.EMAIL_BACKEND)"
    # As shipped (DEBUG=true) and as compose runs it (DEBUG=false, its default).
    for debug in ("true", "false"):
        config = {k: v for k, v in shipped.items() if k not in ("VAR_DIR", "STATIC_ROOT", "MEDIA_ROOT")}
        config["DEBUG"] = debug
        config["SECRET_KEY"] = "x" * 60
        config["FIELD_ENCRYPTION_KEYS"] = "MFrYsFw0Ayh8p2U2zB2k7Ppsz4qVhjVOFtYp1L5eDyE="
        result = run(tmp_path, config, script)
        assert result.returncode == 0, result.stderr
        backend = result.stdout.strip().splitlines()[-1]
        assert "console" not in backend, (debug, backend)
        expected = "filebased" if debug == "true" else "smtp"
        assert expected in backend, (debug, backend)
