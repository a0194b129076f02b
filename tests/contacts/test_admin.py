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
