"""One client's number written the ways people and networks write it (the phone-number tests)."""

from __future__ import annotations

SAME_CLIENT = [
    "+79219462761",
    "79219462761",
    "89219462761",
    "0079219462761",
    "9219462761",
    "+7 (921) 946-27-61",
    "8 921 946 27 61",
    "sip:79219462761@pstn",
    "79219462761@pstn",
    "tel:+7-921-946-27-61",
    # A SIP header's name-addr: a display name and the URI in angle brackets.
    "<sip:79219462761@10.133.33.136>",
    '"Иван" <sip:+79219462761@pstn;user=phone>',
    "Ivan <tel:+79219462761>",
]
