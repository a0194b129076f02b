from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts import selectors
from contacts.models import Contact, PhoneNumber
from contacts.selectors import contact_find_by_number, contact_search, contacts_search
from contacts.services import contact_create, contact_merge

from .numbers import SAME_CLIENT

pytestmark = pytest.mark.django_db


@pytest.fixture
def ivan() -> Contact:
    return contact_create(
        name="Иван Петров",
        company="ООО Ромашка",
        email="ivan@romashka.example",
        numbers=["+7 921 946-27-61", "78124241500@pstn"],
    )


@pytest.mark.parametrize("number", [*SAME_CLIENT, "+79219462761 "])
def test_every_format_finds_the_same_contact(ivan: Contact, number: str) -> None:
    assert contact_find_by_number(number=number) == ivan


@pytest.mark.parametrize("number", ["78124241500@pstn", "+78124241500", "88124241500", "8 (812) 424-15-00"])
def test_second_number_in_every_format(ivan: Contact, number: str) -> None:
    assert contact_find_by_number(number=number) == ivan


def test_lookup_is_one_query(ivan: Contact) -> None:
    with CaptureQueriesContext(connection) as queries:
        found = contact_find_by_number(number="89219462761")
        assert found is not None
        assert found.name == "Иван Петров"
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert "e164" in queries[0]["sql"]


@pytest.mark.parametrize("number", ["", "  ", "anonymous", "+79990000000", "1234567"])
def test_unknown_numbers_find_nobody(ivan: Contact, number: str) -> None:
    assert contact_find_by_number(number=number) is None


def test_unparseable_number_kept_raw_and_found_by_its_digits() -> None:
    contact = contact_create(name="Внутренний", numbers=["12-34-5"])
    number = contact.numbers.get()
    assert number.e164 == ""
    assert number.raw == "12-34-5"
    assert number.raw_digits == "12345"
    assert number.display == "12-34-5"
    assert contact_find_by_number(number="12345") == contact
    assert contact_find_by_number(number="sip:12345@pbx") == contact
    assert contact_find_by_number(number="1234") is None


def test_sip_id_is_never_a_client(ivan: Contact) -> None:
    assert contact_find_by_number(number="883140582526566") is None


def test_lookup_follows_a_tombstone() -> None:
    survivor = contact_create(name="Survivor")
    old = contact_create(name="Old", numbers=["+79219462761"])
    # Numbers normally move with a merge; a row still pointing at a tombstone leads to the survivor.
    Contact.objects.filter(pk=old.pk).update(merged_into=survivor)
    assert contact_find_by_number(number="89219462761") == survivor


@pytest.mark.parametrize(
    "query",
    [
        "Иван",
        "Петров",
        "Ромашка",
        "romashka.example",
        "IVAN@ROMASHKA",
        *SAME_CLIENT,
        "946-27-61",
        "9462761",
        "8921946",  # typed with the trunk prefix, partially
        "424-15-00",
        "78124241500@pstn",
        # With an extension after it: the number is found (it found nothing).
        "+7 921 946 27 61 доб. 12",
        "+7 921 946 27 61 ext. 12",
        "+7 921 946 27 61 #12",
        "+7 921 946 27 61, доб 3",
        "946-27-61 доб. 12",
        # Digits in another script.
        "＋７ ９２１ ９４６-２７-６１",
        "٨٩٢١٩٤٦٢٧٦١",
    ],
)
def test_search_by_every_field_and_number_format(ivan: Contact, query: str) -> None:
    other = contact_create(name="Другой", company="Лютик", numbers=["+74951234567"])
    found = list(contact_search(query=query))
    assert found == [ivan], query
    assert other not in found


def test_search_without_query_lists_current_contacts_newest_first(ivan: Contact) -> None:
    newer = contact_create(name="Новый")
    gone = contact_create(name="Ушедший")
    contact_merge(target=newer, source=gone)
    assert list(contact_search(query="")) == [newer, ivan]


def test_search_finds_unparseable_numbers_by_digits() -> None:
    contact = contact_create(name="Короткий", numbers=["555-01"])
    assert list(contact_search(query="55501")) == [contact]


def test_search_matches_each_contact_once() -> None:
    contact = contact_create(name="Два номера", numbers=["+79215550000", "+74955550000"])
    assert PhoneNumber.objects.filter(contact=contact).count() == 2
    page = contact_search(query="555")
    assert list(page) == [contact]
    assert page.count() == 1


def test_search_is_case_insensitive_for_cyrillic(ivan: Contact) -> None:
    # PostgreSQL folds Unicode case itself; on SQLite mttcrm.sqlite replaces like() to do the same.
    assert list(contact_search(query="иван")) == [ivan]
    assert list(contact_search(query="РОМАШКА")) == [ivan]


# --- contacts_search: the queryset to search in, and both ways of reading the matches -------------


@pytest.fixture(params=["ids", "subquery"])
def search_path(request: Any, monkeypatch: Any) -> str:
    """PostgreSQL reads up to SEARCH_ID_LIST_LIMIT matches by their ids, more through a subquery: both
    give the same contacts (elsewhere there is only the subquery)."""
    if request.param == "subquery":
        monkeypatch.setattr(selectors, "SEARCH_ID_LIST_LIMIT", 0)
    return str(request.param)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("946-27", {"ivan"}),
        ("8 921 946", {"ivan"}),
        ("+7 (921)", {"ivan", "anna"}),
        ("+7 (495)", {"olga"}),
        ("921", {"ivan", "anna"}),
        ("иван", {"ivan"}),
        ("ООО", {"ivan", "olga"}),
        ("ромашка", {"ivan"}),
        ("зzz", set()),
    ],
)
def test_contacts_search_in_any_format(search_path: str, query: str, expected: set[str]) -> None:
    people = {
        "ivan": contact_create(name="Иван Петров", company="ООО Ромашка", numbers=["+79219462761"]),
        "anna": contact_create(name="Анна", numbers=["8 (921) 555-00-11"]),
        "olga": contact_create(name="Ольга", company="ООО Лютик", numbers=["+74951234567"]),
    }
    found = contacts_search(queryset=Contact.objects.current(), query=query)
    assert {name for name, c in people.items() if c in found} == expected
    assert found.count() == len(expected)
    assert list(found) == sorted(found, key=lambda c: -c.pk)  # newest first


def test_contacts_search_stays_inside_the_queryset_it_is_given(search_path: str) -> None:
    mine = contact_create(name="Иван Мой", numbers=["+79210000001"])
    theirs = contact_create(name="Иван Чужой", numbers=["+79210000002"])
    visible = Contact.objects.filter(pk=mine.pk)  # e.g. a team's contacts
    for query in ("Иван", "921000", "+79210000002", "89210000002", ""):
        found = set(contacts_search(queryset=visible, query=query))
        assert theirs not in found, query
    assert list(contacts_search(queryset=visible, query="Иван")) == [mine]
    assert list(contacts_search(queryset=visible, query="+79210000002")) == []
