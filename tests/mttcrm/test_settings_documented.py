from __future__ import annotations

import json
import re

import pytest

from tests.mttcrm.settings_probe import ROOT, fresh_env, run_python


def test_every_setting_read_from_the_environment_is_in_env_example() -> None:
    # Django's settings (through the one environ.Env) and gunicorn's (mttcrm/gunicorn.py, os.environ).
    settings_src = "\n".join(p.read_text() for p in sorted((ROOT / "mttcrm" / "settings").glob("*.py")))
    read = set(re.findall(r'env(?:_flag|\.[a-z_]+)?\(\s*"([A-Z][A-Z0-9_]+)"', settings_src))
    gunicorn_src = (ROOT / "mttcrm" / "gunicorn.py").read_text()
    read |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z][A-Z0-9_]+)"', gunicorn_src))
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "the pattern finds the settings"
    assert read - documented == set(), "add these to .env.example"
    assert documented - read == set(), "these are documented but never read"


def test_every_setting_is_in_the_readme() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    readme = (ROOT / "README.md").read_text()
    missing = {name for name in documented if f"`{name}`" not in readme}
    assert missing == set(), "describe these in README.md"


def test_the_readme_gives_each_setting_the_default_of_env_example() -> None:
    # A value in .env.example is the default the README's table names; a blank one is a default that follows
    # another setting (or nothing), which the table says in words.
    example = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
    rows = dict(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \| (.*?) \|", (ROOT / "README.md").read_text(), re.M))
    wrong = {
        name: (value, rows.get(name))
        for name, value in example.items()
        if not (rows.get(name) or "").startswith(f"`{value}`" if value else ("empty", "blank"))
    }
    assert wrong == {}, "README's Settings table and .env.example disagree (value, README's default)"


SETTINGS_DUMP = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({n: getattr(settings, n) for n in dir(settings) if n.isupper()}, default=str, sort_keys=True))
"""


@pytest.mark.parametrize("debug", ["true", "false"])
def test_a_copy_of_env_example_changes_no_setting(debug: str) -> None:
    # README's compose steps: `cp .env.example .env`, then DEBUG=false. Every variable of the copy is its
    # default, so the settings are those of no variable at all: no plain-http OAuth or insecure cookies in
    # production, no spool in the working folder, no empty Celery broker.
    if (ROOT / ".env").exists():
        pytest.skip("a .env in the project's folder would be read by the run with no variable set")
    example = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
    names = (*example, "PROMETHEUS_MULTIPROC_DIR", "DJANGO_")
    bare = fresh_env({"DEBUG": debug}, without=names)
    copied = fresh_env({**example, "DEBUG": debug}, without=names)
    dumps = []
    for env in (bare, copied):
        result = run_python(SETTINGS_DUMP, env)
        assert result.returncode == 0, result.stderr
        dumps.append(json.loads(result.stdout.splitlines()[-1]))
    without, with_copy = dumps
    changed = {
        name: (without[name], with_copy.get(name)) for name in without if without[name] != with_copy.get(name)
    }
    assert changed == {}, "a copy of .env.example changes these settings (no variable, the copy)"
    assert with_copy["DEBUG"] is (debug == "true")
