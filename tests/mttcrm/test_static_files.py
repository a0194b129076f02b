"""DEBUG=False: after collectstatic the app itself (whitenoise) serves static files, hashed names with
far-future cache headers, compressed when the browser accepts it; pages link the hashed names."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.mttcrm.settings_probe import fresh_env, run_manage, run_python

# Run in a fresh interpreter: STORAGES and whitenoise's file index are fixed when settings load.
PROBE = r"""
import json, sys
from django.core.wsgi import get_wsgi_application
from werkzeug.test import Client

client = Client(get_wsgi_application())
results = {}
for name, path, headers in json.loads(sys.argv[1]):
    response = client.get(path, headers=headers)
    results[name] = {
        "status": response.status_code,
        "headers": {k.lower(): v for k, v in response.headers.items()},
        "body": response.get_data()[:20000].decode("utf-8", "replace"),
    }
    response.close()
print(json.dumps(results))
"""


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return fresh_env(
        {
            "DEBUG": "false",
            "SECRET_KEY": "static-files-test-" + "k" * 60,
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "localhost",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "VAR_DIR": str(tmp_path / "var"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "REDIS_URL": "",
            "CELERY_BROKER_URL": "filesystem://",
            "SECURE_SSL_REDIRECT": "false",
            **extra,
        },
        without=("DJANGO_", "DATABASE_", "REDIS_"),
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, str]]:
    tmp = tmp_path_factory.mktemp("static")
    (tmp / "var").mkdir()
    env = production_env(tmp)
    ok(run_manage(["collectstatic", "--noinput", "-v", "0"], env, timeout=180))
    ok(run_manage(["migrate", "--noinput", "-v", "0"], env, timeout=180))
    manifest = json.loads((tmp / "static" / "staticfiles.json").read_text())["paths"]
    return env, manifest


def probe(env: dict[str, str], requests: list[tuple[str, str, dict[str, str]]]) -> dict[str, Any]:
    result = ok(run_python(PROBE, env, json.dumps(requests), timeout=180))
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_hashed_files_are_served_with_far_future_cache_headers(collected: Any) -> None:
    env, manifest = collected
    hashed = manifest["css/app.css"]
    assert hashed != "css/app.css" and hashed.startswith("css/app.")
    answers = probe(
        env,
        [
            ("hashed", f"/static/{hashed}", {}),
            ("gzip", f"/static/{hashed}", {"Accept-Encoding": "gzip"}),
            ("plain", "/static/css/app.css", {}),
            ("js", "/static/" + manifest["js/click_to_call.js"], {}),
            ("admin", "/static/" + manifest["admin/css/base.css"], {}),
            ("missing", "/static/css/nope.css", {}),
        ],
    )
    hashed_answer = answers["hashed"]
    assert hashed_answer["status"] == 200
    assert "max-age=315360000" in hashed_answer["headers"]["cache-control"]
    assert "immutable" in hashed_answer["headers"]["cache-control"]
    assert hashed_answer["headers"]["content-type"].startswith("text/css")
    assert ".topbar" in hashed_answer["body"]

    assert answers["gzip"]["status"] == 200
    assert answers["gzip"]["headers"].get("content-encoding") == "gzip"

    # The unhashed name works too, but may change: no long cache.
    assert answers["plain"]["status"] == 200
    assert "immutable" not in answers["plain"]["headers"].get("cache-control", "")

    assert answers["js"]["status"] == 200
    assert answers["admin"]["status"] == 200
    assert answers["missing"]["status"] == 404


def test_pages_link_the_hashed_names_and_carry_the_security_headers(collected: Any) -> None:
    env, manifest = collected
    page = probe(env, [("login", "/accounts/login/", {})])["login"]
    assert page["status"] == 200
    assert "/static/" + manifest["css/app.css"] in page["body"]
    assert "/static/" + manifest["js/app.js"] in page["body"]
    headers = page["headers"]
    csp = headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'self'"):
        assert directive in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    # The CSRF cookie the login form sets is Secure and HttpOnly in production.
    cookie = headers.get("set-cookie", "")
    assert "csrftoken=" in cookie and "Secure" in cookie and "HttpOnly" in cookie


def test_csp_report_only_sends_the_same_policy_without_blocking(collected: Any) -> None:
    env, _manifest = collected
    headers = probe({**env, "CSP_REPORT_ONLY": "true"}, [("login", "/accounts/login/", {})])["login"][
        "headers"
    ]
    assert "content-security-policy" not in headers
    assert "script-src 'self'" in headers["content-security-policy-report-only"]


def test_development_serves_static_without_collectstatic(tmp_path: Path) -> None:
    # `make run`: DEBUG=true, nothing collected; whitenoise finds the files in the app folders.
    env = production_env(tmp_path, DEBUG="true", STATIC_ROOT=str(tmp_path / "never-collected"))
    (tmp_path / "var").mkdir(exist_ok=True)
    answers = probe(
        env,
        [
            ("css", "/static/css/click_to_call.css", {}),
            ("js", "/static/js/app.js", {}),
            ("admin", "/static/admin/css/base.css", {}),
        ],
    )
    assert {name: a["status"] for name, a in answers.items()} == {"css": 200, "js": 200, "admin": 200}
    assert ".c2c" in answers["css"]["body"]
