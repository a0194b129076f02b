"""How a call's numbers read to operators on the call log and the call page: a phone number formatted
(+7 921 946-27-61) whatever form MTT sent it in; what is no phone number (an internal extension, a short
service number) without its SIP decoration; as received when nothing is left of it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.personas import bare_call, build_world

pytestmark = pytest.mark.django_db

# client_number_raw as MTT sent it (client_number: normalised, "" when it is no phone number) → shown
SHOWN = [
    ("sip:101@10.133.33.136:5073;user=phone", "", "101"),
    ("<sip:880023213@vpbx.mtt.ru>", "", "880023213"),
    ("4241500@pstn", "", "4241500"),
    ("sip:+375291234567@pstn", "+375291234567", "+375 29 123-45-67"),
    ("80291234567", "", "80291234567"),
]


@pytest.mark.parametrize(("raw", "e164", "shown"), SHOWN)
def test_the_call_log_and_the_call_page_show_a_number_people_can_read(
    integration: Any, raw: str, e164: str, shown: str
) -> None:
    world = build_world(integration)
    call = bare_call(world, "display", client_number=e164, client_number_raw=raw, line_number=raw)
    client = Client()
    client.force_login(world.users["admin"])
    log = client.get("/calls/", {"period": "all"}).content.decode()
    page = client.get(f"/calls/{call.pk}/").content.decode()
    for html in (log, page):
        assert f">{shown}</span>" in html
        if shown != raw:
            assert raw not in html  # the SIP syntax was shown as the number
