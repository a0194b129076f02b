from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from contacts.models import Contact, PhoneNumber
from contacts.services import contact_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client, admin_user: Any) -> Client:
    client.force_login(admin_user)
    return client


@pytest.fixture
def ivan() -> Contact:
    return contact_create(name="Иван Петров", company="Ромашка", numbers=["+79219462761"])


def test_contact_changelist_loads(staff: Client, ivan: Contact) -> None:
    response = staff.get("/admin/contacts/contact/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Иван Петров" in page
    assert "+7 921 946-27-61" in page


@pytest.mark.parametrize(
    "query", ["Иван", "Ромашка", "+79219462761", "89219462761", "0079219462761", "9462761"]
)
def test_contact_search(staff: Client, ivan: Contact, query: str) -> None:
    contact_create(name="Другой", numbers=["+74951234567"])
    page = staff.get("/admin/contacts/contact/", {"q": query}).content.decode()
    assert "Иван Петров" in page
    assert "Другой" not in page


def test_contact_change_page_and_number_inline(staff: Client, ivan: Contact) -> None:
    assert staff.get(f"/admin/contacts/contact/{ivan.pk}/change/").status_code == 200
    number = ivan.numbers.get()
    response = staff.post(
        f"/admin/contacts/contact/{ivan.pk}/change/",
        {
            "name": "Иван Петров",
            "company": "Ромашка",
            "email": "",
            "personal_manager": "",
            "notes": "",
            "source": "manual",
            "numbers-TOTAL_FORMS": "2",
            "numbers-INITIAL_FORMS": "1",
            "numbers-MIN_NUM_FORMS": "0",
            "numbers-MAX_NUM_FORMS": "1000",
            "numbers-0-id": str(number.pk),
            "numbers-0-contact": str(ivan.pk),
            "numbers-0-raw": "+79219462761",
            "numbers-0-kind": "mobile",
            "numbers-1-id": "",
            "numbers-1-contact": str(ivan.pk),
            "numbers-1-raw": "8 (812) 424-15-00",
            "numbers-1-kind": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert set(ivan.numbers.values_list("e164", "raw_digits")) == {
        ("+79219462761", "79219462761"),
        ("+78124241500", "88124241500"),
    }


def test_admin_inline_refuses_another_contacts_number(staff: Client, ivan: Contact) -> None:
    other = contact_create(name="Другой")
    response = staff.post(
        f"/admin/contacts/contact/{other.pk}/change/",
        {
            "name": "Другой",
            "company": "",
            "email": "",
            "personal_manager": "",
            "notes": "",
            "source": "manual",
            "numbers-TOTAL_FORMS": "1",
            "numbers-INITIAL_FORMS": "0",
            "numbers-MIN_NUM_FORMS": "0",
            "numbers-MAX_NUM_FORMS": "1000",
            "numbers-0-id": "",
            "numbers-0-contact": str(other.pk),
            "numbers-0-raw": "89219462761",
            "numbers-0-kind": "",
        },
    )
    assert response.status_code == 200
    assert "Иван Петров" in response.content.decode()
    assert other.numbers.count() == 0


def test_merge_action_merges_into_the_oldest(staff: Client, ivan: Contact) -> None:
    newer = contact_create(name="Дубль", numbers=["+74951234567"])
    response = staff.post(
        "/admin/contacts/contact/",
        {"action": "merge_into_oldest", "_selected_action": [str(newer.pk), str(ivan.pk)]},
    )
    assert response.status_code == 302
    newer.refresh_from_db()
    assert newer.merged_into == ivan
    assert ivan.numbers.count() == 2


def test_phone_number_admin(staff: Client, ivan: Contact) -> None:
    assert staff.get("/admin/contacts/phonenumber/").status_code == 200
    page = staff.get("/admin/contacts/phonenumber/", {"q": "79219462761"}).content.decode()
    assert "+7 921 946-27-61" in page
    number = PhoneNumber.objects.get()
    assert staff.get(f"/admin/contacts/phonenumber/{number.pk}/change/").status_code == 200
    response = staff.post(
        f"/admin/contacts/phonenumber/{number.pk}/change/",
        {"contact": ivan.pk, "raw": "8 921 946 27 61", "kind": "work"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    number.refresh_from_db()
    assert (number.raw, number.e164, number.kind) == ("8 921 946 27 61", "+79219462761", "work")


# --- numbers typed in the admin (probe: numbers) ----------------------------------------------------------


def _inline_post(staff: Client, contact: Contact, rows: list[tuple[str, str]]) -> Any:
    """The contact's change page posted with these number rows: (id or "", raw)."""
    data = {
        "name": contact.name,
        "company": contact.company,
        "email": "",
        "personal_manager": "",
        "notes": "",
        "source": "manual",
        "numbers-TOTAL_FORMS": str(len(rows)),
        "numbers-INITIAL_FORMS": str(sum(1 for pk, _ in rows if pk)),
        "numbers-MIN_NUM_FORMS": "0",
        "numbers-MAX_NUM_FORMS": "1000",
    }
    for i, (pk, raw) in enumerate(rows):
        data |= {f"numbers-{i}-id": pk, f"numbers-{i}-contact": str(contact.pk), f"numbers-{i}-raw": raw}
        data[f"numbers-{i}-kind"] = ""
    return staff.post(f"/admin/contacts/contact/{contact.pk}/change/", data)


@pytest.mark.parametrize(
    ("typed", "e164", "digits", "extension"),
    [
        ("8 800 555-35-35 доб. 12", "+78005553535", "88005553535", "12"),
        ("+7 (495) 123-45-67 (доб. 123)", "+74951234567", "74951234567", "123"),
        ("+7 800 555-35-35,12", "+78005553535", "78005553535", "12"),
    ],
)
def test_an_extension_typed_in_the_admin_is_kept_as_the_contact_form_keeps_it(
    staff: Client, typed: str, e164: str, digits: str, extension: str
) -> None:
    # It stayed inside `raw` with its digits in `raw_digits`, the extension field empty: the contact's
    # page showed the number without it, and the contact form's next save dropped it for good.
    contact = contact_create(name="Склад")
    assert _inline_post(staff, contact, [("", typed)]).status_code == 302
    number = contact.numbers.get()
    assert (number.e164, number.extension, number.raw_digits) == (e164, extension, digits)
    assert number.display.endswith(f"доб. {extension}")
    # Saved again unchanged (the page shows it with its extension), it keeps it.
    page = staff.get(f"/admin/contacts/contact/{contact.pk}/change/").content.decode()
    assert f"доб. {extension}" in page
    shown = f"{number.raw} доб. {extension}"
    assert _inline_post(staff, contact, [(str(number.pk), shown)]).status_code == 302
    assert contact.numbers.get().extension == extension
    # Typed again without it, it has none.
    assert _inline_post(staff, contact, [(str(number.pk), number.raw)]).status_code == 302
    assert contact.numbers.get().extension == ""


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("123", "мало цифр (3)"),
        ("8 (029) 123-45-67", "в России нет кода 029"),
        ("позвонить Ивану", "только цифры"),
        ("+7 921 946 27 61 12", "слишком много цифр"),
        ("+7 921 946 27 61 доб. 12 доб. 13", "два добавочных"),
    ],
)
def test_the_admin_refuses_what_cannot_be_dialled_as_the_contact_form_does(
    staff: Client, ivan: Contact, typed: str, words: str
) -> None:
    # The admin stored any of these as typed: a number nobody can call, on the contact's page with the
    # call button, and a different rule from the contact form's.
    number = ivan.numbers.get()
    response = _inline_post(staff, ivan, [(str(number.pk), "+79219462761"), ("", typed)])
    assert response.status_code == 200
    page = response.content.decode()
    assert words in page and typed in page  # the reason, and what was typed given back
    assert list(ivan.numbers.values_list("e164", flat=True)) == ["+79219462761"]
    single = staff.post("/admin/contacts/phonenumber/add/", {"contact": ivan.pk, "raw": typed, "kind": ""})
    assert single.status_code == 200 and words in single.content.decode()
    assert PhoneNumber.objects.count() == 1


def test_a_number_the_pbx_stored_as_it_came_is_kept_when_the_page_is_saved(staff: Client) -> None:
    # A short internal number, stored from a call as received: saving the contact unchanged keeps it.
    contact = contact_create(name="Вахта", numbers=["101"])
    number = contact.numbers.get()
    assert _inline_post(staff, contact, [(str(number.pk), "101")]).status_code == 302
    assert contact.numbers.get().raw == "101"
    response = staff.post(
        f"/admin/contacts/phonenumber/{number.pk}/change/",
        {"contact": contact.pk, "raw": "101", "kind": "work"},
    )
    assert response.status_code == 302
    assert contact.numbers.get().kind == "work"


@pytest.mark.parametrize(
    "query", ["8 (921) 946-27-61", "8 921 946-27-61 доб. 12", "+7 921 946", "sip:79219462761@pstn"]
)
def test_the_admins_number_list_and_contact_list_find_a_number_typed_with_spaces(
    staff: Client, ivan: Contact, query: str
) -> None:
    # Django's admin searches word by word: "8", "(921)", "946-27-61" in "+79219462761" found nothing.
    contact_create(name="Другой", numbers=["+74951234567"])
    numbers = staff.get("/admin/contacts/phonenumber/", {"q": query})
    assert [n.pk for n in numbers.context["cl"].result_list] == [ivan.numbers.get().pk]
    contacts = staff.get("/admin/contacts/contact/", {"q": query})
    assert [c.pk for c in contacts.context["cl"].result_list] == [ivan.pk]
