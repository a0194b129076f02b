from __future__ import annotations

import gettext
import re
from pathlib import Path

LOCALE = Path(__file__).resolve().parents[2] / "locale" / "ru" / "LC_MESSAGES"


def po_entries() -> dict[str, str]:
    text = (LOCALE / "django.po").read_text(encoding="utf-8")
    entries = dict(re.findall(r'^msgid "(.+)"\nmsgstr "(.*)"$', text, re.M))
    return {
        k.encode().decode("unicode_escape").encode("latin-1").decode() if "\\" in k else k: v
        for k, v in entries.items()
    }


def test_every_ui_string_has_a_russian_translation() -> None:
    entries = po_entries()
    assert len(entries) > 100
    assert [msgid for msgid, msgstr in entries.items() if not msgstr] == []
    assert "#, fuzzy\n#" not in (LOCALE / "django.po").read_text(encoding="utf-8")


def test_compiled_catalog_matches_the_po_file() -> None:
    catalog = gettext.GNUTranslations((LOCALE / "django.mo").open("rb"))
    entries = po_entries()
    stale = [msgid for msgid in entries if catalog.gettext(msgid) == msgid and entries[msgid] != msgid]
    assert stale == [], "run: msgfmt -o locale/ru/LC_MESSAGES/django.mo locale/ru/LC_MESSAGES/django.po"
