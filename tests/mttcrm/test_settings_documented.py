from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_read_from_the_environment_is_in_env_example() -> None:
    # Django's settings (through the one environ.Env) and gunicorn's (mttcrm/gunicorn.py, os.environ).
    settings_src = "\n".join(p.read_text() for p in sorted((ROOT / "mttcrm" / "settings").glob("*.py")))
    read = set(re.findall(r'env(?:\.[a-z_]+)?\(\s*"([A-Z][A-Z0-9_]+)"', settings_src))
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
