from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_read_from_the_environment_is_in_env_example() -> None:
    settings_src = (ROOT / "mttcrm" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.[a-z_]+)?\(\s*"([A-Z][A-Z0-9_]+)"', settings_src))
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "the pattern finds the settings"
    assert read - documented == set(), "add these to .env.example"
    assert documented - read == set(), "these are documented but never read"


def test_every_setting_is_in_the_readme() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    readme = (ROOT / "README.md").read_text()
    missing = {name for name in documented if f"`{name}`" not in readme}
    assert missing == set(), "describe these in README.md"
