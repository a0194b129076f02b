"""Numbers people type into the contact form (issue 16): what Russian users write is accepted and stored
as one number with its extension apart; what cannot be dialled is refused in words before saving."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from contacts import phones
from contacts.models import Contact, PhoneNumber
from contacts.services import contact_create

pytestmark = pytest.mark.django_db

# typed → (E.164, extension)
ACCEPTED = [
    ("+7 921 946-27-61", "+79219462761", ""),
    ("8 (921) 946-27-61", "+79219462761", ""),
    ("8-921-946-27-61", "+79219462761", ""),
    ("7 921 946 27 61", "+79219462761", ""),
    ("00 7 921 946 27 61", "+79219462761", ""),
    ("+7(495)123-45-67", "+74951234567", ""),
    ("(495) 123-45-67", "+74951234567", ""),
    ("8 (800) 555-35-35 доб. 12", "+78005553535", "12"),
    ("8 (800) 555-35-35 доб.12", "+78005553535", "12"),
    ("8 800 555 35 35 добавочный 345", "+78005553535", "345"),
    ("8 800 555-35-35 Доб 7", "+78005553535", "7"),
    ("+7 800 555-35-35 ext. 12", "+78005553535", "12"),
    ("+7 800 555-35-35 ext12", "+78005553535", "12"),
    ("+7 800 555-35-35 x 12", "+78005553535", "12"),
    ("+7 800 555-35-35 #12", "+78005553535", "12"),
    ("+7 800 555-35-35,12", "+78005553535", "12"),
    ("+7 800 555-35-35 вн. 1234", "+78005553535", "1234"),
    # A comma before the extension (it was read as a second number, "доб 5", and refused).
    ("+7 921 946 27 77, доб 5", "+79219462777", "5"),
    ("+7 921 946 27 77, ext. 5", "+79219462777", "5"),
    ("+7 921 946 27 77, #5", "+79219462777", "5"),
    ("＋７ ９２１ ９４６ ２７ ７７", "+79219462777", ""),
    ("+49 151 12345678", "+4915112345678", ""),
    # Copied from a messenger or a web page: bidi marks around it, zero-width spaces or a BOM inside.
    ("\u202a+7 921 946-27-61\u202c", "+79219462761", ""),
    ("\u2066+7 (921) 946-27-61\u2069", "+79219462761", ""),
    ("+7\u200b921\u200b946\u200b27\u200b61", "+79219462761", ""),
    ("\ufeff8 921 946-27-61", "+79219462761", ""),
    # An extension in brackets, as business cards write it (it was refused as "digits only").
    ("+7 (495) 123-45-67 (доб. 123)", "+74951234567", "123"),
    ("8 495 123-45-67 (ext. 5)", "+74951234567", "5"),
    # Quoted, as a CSV, a letter or a spreadsheet's text cell gives it.
    ('"+7 921 946-27-61"', "+79219462761", ""),
    ("«8 (921) 946-27-61 доб. 5»", "+79219462761", "5"),
    # Foreign numbers with the international prefixes people use.
    ("8 10 375 29 123-45-67", "+375291234567", ""),
    ("00 44 20 7946 0958", "+442079460958", ""),
    ("+1 (212) 555-0123 доб. 7", "+12125550123", "7"),
]

# typed → words the refusal must contain (the Russian UI)
REFUSED = [
    ("123", "мало цифр (3)"),
    ("+7 999 12", "мало цифр (6)"),
    ("8 800 555", "мало цифр"),
    ("доб. 12", "только цифры"),
    ("позвонить Ивану", "только цифры"),
    ("+7 921 946 27 61 12", "слишком много цифр (13)"),
    ("8 921 946 27 61 1", "слишком много цифр"),
    ("883140582526566", "SIP ID"),
    ("+7 921 946 27 61 доб. 12 доб. 13", "два добавочных"),
    # After a semicolon: the next number, here too short (it was dropped unseen, ";12" too).
    ("8 921 946 27 61;12", "мало цифр (2)"),
    # Belarus's own way to write +375 29 123-45-67: it was stored as +7 029 123-45-67, a number nobody has.
    ("8 (029) 123-45-67", "в России нет кода 029"),
    ("+7 (123) 456-78-90", "в России нет кода 123"),
]


@pytest.fixture
def operator(client: Client, operator_user: Any) -> Client:
    client.force_login(operator_user)
    return client


def post(client: Client, numbers: str, url: str = "/contacts/new/") -> Any:
    return client.post(url, {"name": "Клиент", "numbers": numbers})


@pytest.mark.parametrize(("typed", "e164", "extension"), ACCEPTED)
def test_the_form_accepts_what_people_type(operator: Client, typed: str, e164: str, extension: str) -> None:
    response = post(operator, typed)
    assert response.status_code == 302, response.content.decode()[-2000:]
    number = PhoneNumber.objects.get()
    assert (number.e164, number.extension) == (e164, extension)
    page = operator.get(response["Location"]).content.decode()
    assert number.number_display in page
    if extension:
        assert f"доб. {extension}" in page


@pytest.mark.parametrize(("typed", "words"), REFUSED)
def test_the_form_refuses_what_cannot_be_dialled_in_words(operator: Client, typed: str, words: str) -> None:
    response = post(operator, typed)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="error"' in page and words in page, page[-3000:]
    assert not Contact.objects.exists() and not PhoneNumber.objects.exists()
    assert response.context["form"]["numbers"].value() == typed  # given back to correct, nothing lost
    assert f"{escape(typed)}</textarea>" in page


@pytest.mark.parametrize(("typed", "number", "extension"), [
    ("8 (800) 555-35-35 доб. 12", "8 (800) 555-35-35", "12"),
    ("+7 800 555-35-35,12", "+7 800 555-35-35", "12"),
    ("tel:+74951234567;ext=9", "tel:+74951234567", "9"),
    ("+7 800 555-35-35", "+7 800 555-35-35", ""),
    ("#12", "#12", ""),
])  # fmt: skip
def test_split_extension(typed: str, number: str, extension: str) -> None:
    assert phones.split_extension(typed) == (number, extension)


def test_several_numbers_on_commas_with_an_extension_after_a_comma(operator: Client) -> None:
    response = post(operator, "+7 921 946 27 77, доб 5, 8 921 946-27-61, доб. 7, 8 495 123-45-67")
    assert response.status_code == 302, response.content.decode()[-2000:]
    stored = set(PhoneNumber.objects.values_list("e164", "extension"))
    assert stored == {("+79219462777", "5"), ("+79219462761", "7"), ("+74951234567", "")}


def test_two_numbers_and_an_extension_on_lines_and_commas(operator: Client) -> None:
    response = post(operator, "+7 800 555-35-35,12, 8 921 946-27-61\n8 495 123-45-67 доб. 5")
    assert response.status_code == 302
    stored = set(PhoneNumber.objects.values_list("e164", "extension"))
    assert stored == {("+78005553535", "12"), ("+79219462761", ""), ("+74951234567", "5")}


def test_editing_keeps_the_extension_round_trip_and_an_old_undialable_number(operator: Client) -> None:
    contact = contact_create(name="Склад", numbers=["8 800 555-35-35 доб. 12", "12-34"])
    form = operator.get(f"/contacts/{contact.pk}/edit/").content.decode()
    assert "12-34" in form
    numbers = "\n".join(n.display for n in contact.numbers.all())
    response = post(operator, numbers, f"/contacts/{contact.pk}/edit/")
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert set(contact.numbers.values_list("e164", "extension", "raw")) == {
        ("+78005553535", "12", "+7 800 555-35-35"),
        ("", "", "12-34"),
    } or set(contact.numbers.values_list("e164", "extension")) == {("+78005553535", "12"), ("", "")}
    post(operator, "+7 800 555-35-35 доб. 99", f"/contacts/{contact.pk}/edit/")
    assert list(contact.numbers.values_list("e164", "extension")) == [("+78005553535", "99")]


@pytest.mark.parametrize(
    "typed",
    ["9" * 5000, "+" * 3000, "позвонить " * 500, "\u202e1234567\u202c", "12\x0734\x1b[31m"],
    ids=["5000-digits", "pluses", "long-words", "bidi-override", "control-characters"],
)
def test_a_refusal_repeats_a_short_visible_part_of_what_was_typed(operator: Client, typed: str) -> None:
    response = post(operator, typed)
    assert response.status_code == 200 and not PhoneNumber.objects.exists()
    (error,) = response.context["form"].errors["numbers"]
    assert len(error) < 300 and ("нельзя набрать" in error or "SIP ID" in error), error
    assert not any(ch in error for ch in "\u202e\u202c\x07\x1b"), error


@pytest.mark.parametrize(
    "typed",
    [
        "8 921 946-27-61; 8 921 946-27-62",
        "8 921 946-27-61;8 921 946-27-62",
        "8 921 946-27-61, доб. 5; 8 921 946-27-62",
        # A row pasted from a spreadsheet: refused as one number "8 921 946 27 618 921 946 27 62".
        "8 921 946-27-61\t8 921 946-27-62",
        "8 921 946-27-61,5\t8 921 946-27-62",
        '"8 921 946-27-61","8 921 946-27-62"',  # a CSV row
    ],
)
def test_numbers_on_semicolons_or_tabs_are_each_kept(operator: Client, typed: str) -> None:
    # Read as one number, everything after the semicolon was dropped and the second number lost.
    assert post(operator, typed).status_code == 302
    assert set(PhoneNumber.objects.values_list("e164", flat=True)) == {"+79219462761", "+79219462762"}


def test_a_tel_uri_keeps_its_parameters(operator: Client) -> None:
    assert post(operator, "tel:+7-921-946-27-61;ext=5").status_code == 302
    assert list(PhoneNumber.objects.values_list("e164", "extension")) == [("+79219462761", "5")]


def test_a_pasted_column_of_numbers_is_refused_before_any_lookup(operator: Client) -> None:
    # 3000 numbers took 20 s and thousands of queries, and made one contact of them; the API allows 50.
    column = "\n".join(f"+7 921 {n:07d}" for n in range(51))
    with CaptureQueriesContext(connection) as queries:
        response = post(operator, column)
    assert response.status_code == 200
    assert response.context["form"].errors["numbers"] == [
        "У контакта может быть не больше 50 номеров; введено 51."
    ]
    assert not any("phonenumber" in q["sql"] for q in queries.captured_queries)
    assert not Contact.objects.exists() and not PhoneNumber.objects.exists()
    assert post(operator, "\n".join(column.splitlines()[:50])).status_code == 302
    assert PhoneNumber.objects.count() == 50


@pytest.mark.parametrize(
    "typed",
    [
        "+7 921 946 27 61 доб. 5\n8 921 946-27-62\n8 (921) 946-27-61 доб. 6",
        "+7 921 946 27 61 (доб. 5), 89219462761",
        "89219462761\n+7 921 946 27 61 #6",
    ],
)
def test_one_number_entered_twice_with_different_extensions_is_refused(operator: Client, typed: str) -> None:
    # The second was dropped unseen: the contact kept "доб. 5" and lost "доб. 6" (or the extension itself).
    response = post(operator, typed)
    assert response.status_code == 200
    (error,) = response.context["form"].errors["numbers"]
    assert "введён дважды с разными добавочными" in error and "921 946" in error, error
    assert not PhoneNumber.objects.exists()
    assert response.context["form"]["numbers"].value() == typed


def test_one_number_entered_twice_with_the_same_extension_is_one_number(operator: Client) -> None:
    assert post(operator, "+7 921 946 27 61 доб. 5\n8 (921) 946-27-61 (доб. 5)").status_code == 302
    assert list(PhoneNumber.objects.values_list("e164", "extension")) == [("+79219462761", "5")]
