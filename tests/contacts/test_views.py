from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from contacts.models import Contact
from contacts.selectors import contact_find_by_number
from contacts.services import contact_create, contact_merge

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client: Client, operator_user: Any) -> Client:
    client.force_login(operator_user)
    return client


@pytest.fixture
def ivan(operator_user: Any) -> Contact:
    return contact_create(
        name="Иван Петров",
        company="ООО Ромашка",
        email="ivan@romashka.example",
        notes="Звонить после обеда",
        numbers=["+79219462761", "12-34"],
        personal_manager=operator_user,
    )


def test_url_names() -> None:
    assert reverse("contacts:list") == "/contacts/"
    assert reverse("contacts:create") == "/contacts/new/"
    assert reverse("contacts:merge") == "/contacts/merge/"
    assert reverse("contacts:detail", kwargs={"pk": 7}) == "/contacts/7/"
    assert reverse("contacts:edit", kwargs={"pk": 7}) == "/contacts/7/edit/"


@pytest.mark.parametrize("path", ["/contacts/", "/contacts/1/", "/contacts/new/", "/contacts/1/edit/"])
def test_anonymous_is_sent_to_login(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_anonymous_cannot_merge(client: Client, ivan: Contact) -> None:
    response = client.post("/contacts/merge/", {"source": ivan.pk, "target": ivan.pk})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_list_shows_contacts_with_formatted_numbers(operator: Client, ivan: Contact) -> None:
    response = operator.get("/contacts/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Иван Петров" in page
    assert "ООО Ромашка" in page
    assert "+7 921 946-27-61" in page
    assert "12-34" in page
    assert "operator" in page  # the personal manager
    assert ivan.get_absolute_url() in page
    assert "css/contacts.css" in page


@pytest.mark.parametrize(
    "query", ["Иван", "Ромашка", "89219462761", "0079219462761", "79219462761@pstn", "946-27"]
)
def test_list_search(operator: Client, ivan: Contact, query: str) -> None:
    contact_create(name="Другой клиент", numbers=["+74951234567"])
    page = operator.get("/contacts/", {"q": query}).content.decode()
    assert "Иван Петров" in page
    assert "Другой клиент" not in page


def test_list_search_without_results_offers_to_create(operator: Client, ivan: Contact) -> None:
    page = operator.get("/contacts/", {"q": "+74950000000"}).content.decode()
    assert "Иван Петров" not in page
    assert "/contacts/new/?number=%2B74950000000" in page


def test_list_paginates_by_50(operator: Client) -> None:
    Contact.objects.bulk_create([Contact(name=f"Клиент {i:03d}") for i in range(60)])
    first = operator.get("/contacts/").content.decode()
    second = operator.get("/contacts/", {"page": 2}).content.decode()
    assert first.count("<tr>") - 1 == 50  # minus the header row
    assert second.count("<tr>") - 1 == 10
    assert "Клиент 059" in first and "Клиент 000" in second
    assert 'rel="next"' in first


def test_detail(operator: Client, ivan: Contact) -> None:
    response = operator.get(f"/contacts/{ivan.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<span class="phone" data-e164="+79219462761"' in page
    assert "+7 921 946-27-61</span>" in page
    assert '<span class="phone" data-e164=""' in page  # the number kept as typed
    assert "ivan@romashka.example" in page
    assert "Звонить после обеда" in page
    assert '<section id="contact-calls" class="card">' in page  # the calls app fills it
    assert f"/contacts/{ivan.pk}/edit/" in page
    assert "contacts/merge/" not in page  # operators without the permission get no merge form


def test_detail_404(operator: Client) -> None:
    assert operator.get("/contacts/999999/").status_code == 404


def test_a_merged_contact_redirects_to_the_survivor(operator: Client, ivan: Contact) -> None:
    old = contact_create(name="Старый")
    contact_merge(target=ivan, source=old)
    response = operator.get(f"/contacts/{old.pk}/")
    assert response.status_code == 302
    assert response["Location"] == f"/contacts/{ivan.pk}/"
    assert "Старый" not in operator.get("/contacts/").content.decode()


def test_create_form_prefills_the_number_from_the_screen_pop(operator: Client) -> None:
    response = operator.get("/contacts/new/", {"number": "89219462761"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "89219462761</textarea>" in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_create_form_points_at_an_existing_owner(operator: Client, ivan: Contact) -> None:
    page = operator.get("/contacts/new/", {"number": "89219462761"}).content.decode()
    assert ivan.get_absolute_url() in page


def grant(user: Any, codename: str) -> None:
    user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="contacts"))


def test_create(operator: Client, operator_user: Any) -> None:
    grant(operator_user, "change_personal_manager")  # a supervisor's permission
    response = operator.post(
        "/contacts/new/",
        {
            "name": "Мария",
            "company": "ИП Мария",
            "numbers": "8 921 946-27-61\n+7 812 424-15-00",
            "email": "m@example.com",
            "personal_manager": operator_user.pk,
            "notes": "VIP",
        },
    )
    contact = Contact.objects.get(name="Мария")
    assert response.status_code == 302
    assert response["Location"] == f"/contacts/{contact.pk}/"
    assert contact.personal_manager == operator_user
    assert set(contact.numbers.values_list("e164", flat=True)) == {"+79219462761", "+78124241500"}
    assert contact_find_by_number(number="78124241500@pstn") == contact


def test_create_with_a_taken_number_names_its_owner(operator: Client, ivan: Contact) -> None:
    response = operator.post("/contacts/new/", {"name": "Двойник", "numbers": "0079219462761"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="error"' in page
    assert "Иван Петров" in page
    assert not Contact.objects.filter(name="Двойник").exists()


def test_create_refuses_sip_ids_and_empty_forms(operator: Client) -> None:
    response = operator.post("/contacts/new/", {"name": "X", "numbers": "883140582526566"})
    assert response.status_code == 200
    assert 'class="error"' in response.content.decode()
    response = operator.post("/contacts/new/", {"name": "", "numbers": ""})
    assert response.status_code == 200
    assert Contact.objects.count() == 0


def test_create_without_csrf_is_refused(operator_user: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)
    assert client.post("/contacts/new/", {"name": "X"}).status_code == 403


def test_personal_manager_choices_are_active_users(
    operator: Client, operator_user: Any, django_user_model: Any
) -> None:
    grant(operator_user, "change_personal_manager")
    django_user_model.objects.create_user("gone", password="x", is_active=False)
    page = operator.get("/contacts/new/").content.decode()
    assert ">operator<" in page
    assert ">gone<" not in page


def test_edit(operator: Client, ivan: Contact) -> None:
    page = operator.get(f"/contacts/{ivan.pk}/edit/").content.decode()
    assert "+7 921 946-27-61\n12-34</textarea>" in page
    assert "Иван Петров" in page
    response = operator.post(
        f"/contacts/{ivan.pk}/edit/",
        {"name": "Иван П.", "company": "", "numbers": "89219462761\n+74951234567", "email": "", "notes": ""},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/contacts/{ivan.pk}/"
    ivan.refresh_from_db()
    assert ivan.name == "Иван П."
    # Not in the POST, and locked for an operator anyway: the manager stays.
    assert ivan.personal_manager_id is not None
    assert set(ivan.numbers.values_list("e164", flat=True)) == {"+79219462761", "+74951234567"}
    assert contact_find_by_number(number="1234") is None  # the dropped number is free again


def test_edit_with_another_contacts_number(operator: Client, ivan: Contact) -> None:
    other = contact_create(name="Пётр", numbers=["+74951234567"])
    response = operator.post(f"/contacts/{ivan.pk}/edit/", {"name": "Иван", "numbers": "84951234567"})
    assert response.status_code == 200
    assert "Пётр" in response.content.decode()
    assert contact_find_by_number(number="+74951234567") == other


def test_merge_needs_the_permission(operator: Client, ivan: Contact) -> None:
    other = contact_create(name="Дубль", numbers=["+74951234567"])
    response = operator.post("/contacts/merge/", {"source": other.pk, "target": ivan.pk})
    assert response.status_code == 403
    other.refresh_from_db()
    assert other.merged_into is None


def test_merge_page(operator: Client, operator_user: Any, ivan: Contact) -> None:
    operator_user.user_permissions.add(Permission.objects.get(codename="merge_contact"))
    other = contact_create(name="Дубль", numbers=["+74951234567"])
    page = operator.get(f"/contacts/{other.pk}/").content.decode()
    assert 'action="/contacts/merge/"' in page
    assert operator.get("/contacts/merge/").status_code == 405
    response = operator.post("/contacts/merge/", {"source": other.pk, "target": ivan.pk})
    assert response.status_code == 302
    assert response["Location"] == f"/contacts/{ivan.pk}/"
    other.refresh_from_db()
    assert other.merged_into == ivan
    assert contact_find_by_number(number="84951234567") == ivan


@pytest.mark.parametrize("target", ["999999", "self", ""])
def test_merge_with_a_bad_target_changes_nothing(
    operator: Client, operator_user: Any, ivan: Contact, target: str
) -> None:
    operator_user.user_permissions.add(Permission.objects.get(codename="merge_contact"))
    response = operator.post(
        "/contacts/merge/", {"source": ivan.pk, "target": ivan.pk if target == "self" else target}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/contacts/{ivan.pk}/"
    ivan.refresh_from_db()
    assert ivan.merged_into is None


def test_staff_may_merge(client: Client, admin_user: Any, ivan: Contact) -> None:
    client.force_login(admin_user)
    other = contact_create(name="Дубль")
    assert 'action="/contacts/merge/"' in client.get(f"/contacts/{ivan.pk}/").content.decode()
    client.post("/contacts/merge/", {"source": other.pk, "target": ivan.pk})
    other.refresh_from_db()
    assert other.merged_into == ivan


def test_search_with_a_nul(operator: Client, ivan: Contact) -> None:
    # Found by fuzzing: on PostgreSQL a NUL in ?q= was a DataError (500).
    response = operator.get("/contacts/", {"q": "Иван\x00"})
    assert response.status_code == 200
    assert "Иван Петров" in response.content.decode()


# --- the personal manager needs a permission (issue 18) ------------------------------------------


def test_an_operator_cannot_make_themselves_a_vips_manager(
    operator: Client, operator_user: Any, django_user_model: Any
) -> None:
    manager = django_user_model.objects.create_user("manager", password="x")
    vip = contact_create(name="VIP", numbers=["+74957654321"], personal_manager=manager)
    # A forged POST (the field is locked on the page) naming the operator as the manager.
    response = operator.post(
        f"/contacts/{vip.pk}/edit/",
        {"name": "VIP", "numbers": "+74957654321", "personal_manager": operator_user.pk},
    )
    assert response.status_code == 302
    vip.refresh_from_db()
    assert vip.personal_manager == manager
    # Nor on a new contact.
    operator.post("/contacts/new/", {"name": "Новый VIP", "personal_manager": operator_user.pk})
    assert Contact.objects.get(name="Новый VIP").personal_manager is None


def test_the_field_is_locked_for_operators_and_open_for_supervisors(
    client: Client, operator_user: Any, ivan: Contact
) -> None:
    client.force_login(operator_user)
    field = _manager_select(client.get(f"/contacts/{ivan.pk}/edit/").content.decode())
    assert " disabled" in field
    grant(operator_user, "change_personal_manager")
    field = _manager_select(client.get(f"/contacts/{ivan.pk}/edit/").content.decode())
    assert " disabled" not in field


def _manager_select(page: str) -> str:
    start = page.index('<select name="personal_manager"')
    return page[start : page.index(">", start)]


def test_a_supervisor_changes_the_manager(
    client: Client, operator_user: Any, django_user_model: Any, ivan: Contact
) -> None:
    supervisor = django_user_model.objects.create_user("boss", password="x")
    grant(supervisor, "change_personal_manager")
    client.force_login(supervisor)
    response = client.post(
        f"/contacts/{ivan.pk}/edit/",
        {"name": ivan.name, "numbers": "+79219462761", "personal_manager": supervisor.pk},
    )
    assert response.status_code == 302
    ivan.refresh_from_db()
    assert ivan.personal_manager == supervisor
