"""The call log's number search (/calls/?q=) and the API's call filter (/api/v1/calls/?number=) read a number
the way the contacts' search does (contacts.selectors.number_query): whole or a part, typed with the Russian
trunk prefix "8", "+7", "7" or "00", with spaces, brackets and dashes, an extension after it. Both answer
the same table, and the contacts' search finds the same clients for the very same text."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from calls.models import Call
from contacts.models import Contact
from contacts.selectors import contacts_search
from contacts.services import contact_create
from tests.api.tokens import token_client
from tests.personas import World, bare_call, build_world

pytestmark = pytest.mark.django_db

# The world's calls (tests/personas.py) and three more: each key is a call, and a contact of the same name.
#   own        +7 921 946-27-61 (the world's client, "Ольга Смирнова")
#   other      +7 812 424-15-00
#   outsider   +7 495 700-11-22
#   neighbour  +7 921 946-28-99: the same first seven digits as "own"
#   spb        +7 812 946-27-61: the same last seven digits as "own"
#   local      555-44-33, a city number without its code: no E.164, kept as received
#   minsk      +375 29 123-45-67, a foreign client
SEARCHES = [
    # The user's report: typed with the trunk prefix "8", these found nothing.
    ("8 921 946", {"own", "neighbour"}),
    ("8 (921) 946-27", {"own"}),
    ("8 (921) 946-28", {"neighbour"}),
    ("8 (812)", {"other", "spb"}),
    ("8 812 946-27-61", {"spb"}),
    ("8-921-946", {"own", "neighbour"}),
    ("８ ９２１ ９４６", {"own", "neighbour"}),  # full-width digits, as some input methods type them
    # +7, 7, 00 and no prefix.
    ("+7 (921) 946", {"own", "neighbour"}),
    ("+7 921 946-27-61", {"own"}),
    ("7 921 946", {"own", "neighbour"}),
    ("79219462761", {"own"}),
    ("007 921 946", {"own", "neighbour"}),
    ("0079219462761", {"own"}),
    ("9219462761", {"own"}),
    ("921946", {"own", "neighbour"}),
    ("tel:+7-921-946-27-61", {"own"}),
    # A whole number, with or without an extension after it: that number only.
    ("89219462761", {"own"}),
    ("8 (921) 946-27-61", {"own"}),
    ("8 (921) 946-27-61 доб. 12", {"own"}),
    ("8 921 946 27 61, доб 5", {"own"}),
    ("8-921-946-27-61 ext. 12", {"own"}),
    ("+7 921 946-27-61 #12", {"own"}),
    ("8 (812) 424-15-00", {"other"}),
    # The end of a number, wherever it was typed from.
    ("946-27", {"own", "spb"}),
    ("946-27-61", {"own", "spb"}),
    ("27-61", {"own", "spb"}),
    # A number that is not a phone number, by its digits.
    ("555-44-33", {"local"}),
    ("44-33", {"local"}),
    # A foreign number, whole or its start, with "+", 00 or Russia's international prefix 8~10 (which
    # found nothing for a part of one).
    ("+375 29 123-45-67", {"minsk"}),
    ("8 10 375 29 123-45-67", {"minsk"}),
    ("8 10 375 29 123", {"minsk"}),
    ("810 375", {"minsk"}),
    ("00 375 29 123", {"minsk"}),
    ("+375 29", {"minsk"}),
    # Belarus's own way to write it is no number: nobody (it was read as a +7 number).
    ("8 (029) 123-45-67", set()),
    # Nobody: another number, another code, too few digits.
    ("8 (921) 946-27-62", set()),
    ("8 921 947", set()),
    ("8 499", set()),
    ("8 555", set()),
    ("+7 (999)", set()),
    ("92", set()),
]

EXTRA = {
    "neighbour": "+79219462899",
    "spb": "+78129462761",
    "local": "5554433",
    "minsk": "+375 29 123-45-67",
}


@pytest.fixture
def calls(integration: Any) -> tuple[World, dict[int, str]]:
    """The world, and each call's key by its id (the world's three calls and the EXTRA ones)."""
    world = build_world(integration)
    keys = {world.own_call.pk: "own", world.other_call.pk: "other", world.outsider_call.pk: "outsider"}
    for key, number in EXTRA.items():
        contact = contact_create(name=key, numbers=[number])
        e164 = contact.numbers.get().e164
        call = bare_call(world, key, client_number=e164, client_number_raw=number, contact=contact)
        keys[call.pk] = key
    assert Call.objects.get(call_key="local").client_number == ""  # kept as received only
    return world, keys


def _page(world: World, query: str) -> list[Call]:
    client = Client()
    client.force_login(world.users["operator"])
    response = client.get("/calls/", {"period": "all", "q": query})
    assert response.status_code == 200
    return list(response.context["calls"])


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
def test_the_call_logs_search_finds_a_number_in_any_format(
    calls: tuple[World, dict[int, str]], query: str, expected: set[str]
) -> None:
    world, keys = calls
    assert {keys[call.pk] for call in _page(world, query)} == expected


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
def test_the_apis_number_filter_finds_a_number_in_any_format(
    calls: tuple[World, dict[int, str]], query: str, expected: set[str]
) -> None:
    world, keys = calls
    response = token_client(world.users["admin"]).get("/api/v1/calls/", {"number": query})
    assert response.status_code == 200
    assert {keys[row["id"]] for row in response.json()["results"]} == expected


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
def test_the_contacts_search_finds_the_same_clients(
    calls: tuple[World, dict[int, str]], query: str, expected: set[str]
) -> None:
    _world, keys = calls
    by_contact = {call.contact_id: keys[call.pk] for call in Call.objects.all()}
    found = contacts_search(queryset=Contact.objects.current(), query=query)
    assert {by_contact[contact.pk] for contact in found} == expected


def test_a_name_is_still_searched_and_a_number_is_not_a_name(calls: tuple[World, dict[int, str]]) -> None:
    world, keys = calls
    assert {keys[call.pk] for call in _page(world, "смирнова")} == {"own"}
    # A name with digits in it is a name: its digits are not searched as a number.
    assert _page(world, "Смирнова 921") == []
    # The API's number filter takes numbers only.
    response = token_client(world.users["admin"]).get("/api/v1/calls/", {"number": "Смирнова"})
    assert response.status_code == 200 and response.json()["results"] == []
