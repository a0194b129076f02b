"""/favicon.ico, which browsers ask for on every page that names no icon (the admin's), is the site's icon,
not a 404 (a console error on every admin page)."""

from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles import finders
from django.test import Client


def test_the_favicon_is_the_sites_icon() -> None:
    response = Client().get("/favicon.ico")
    assert response.status_code == 301
    location = response["Location"]
    assert location.startswith("/static/favicon") and location.endswith(".svg")
    found = finders.find("favicon.svg")
    assert isinstance(found, str) and Path(found).read_text(encoding="utf-8").startswith("<svg")
