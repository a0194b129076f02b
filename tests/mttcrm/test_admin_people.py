"""People in the admin by name ("Мария Иванова"), as our pages show them, not by login ("ivanova"): list
columns, filters, selects and read-only fields. Read from the registered admins, so a new model is covered."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.auth import get_user_model
from django.db import models
from django.test import Client, RequestFactory

from contacts.people import person_name

OUR_APPS = {"api", "calls", "contacts", "integrations", "monitoring", "webhooks"}


def _people_fields(model: type[models.Model]) -> set[str]:
    return {
        f.name
        for f in model._meta.get_fields()
        if isinstance(f, models.ForeignKey) and f.related_model._meta.label == settings.AUTH_USER_MODEL
    }


def _our_admins() -> list[tuple[type[models.Model], Any]]:
    return [
        (m, admin.site.get_model_admin(m))
        for m in apps.get_models()
        if m._meta.app_label in OUR_APPS and admin.site.is_registered(m)
    ]


@pytest.mark.django_db
def test_no_admin_of_ours_shows_a_person_by_login(admin_user: Any) -> None:
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    by_login = []
    for model, model_admin in _our_admins():
        people = _people_fields(model)
        if not people:
            continue
        editable = set(model_admin.list_editable)
        by_login += [
            f"{model.__name__} column {n}"
            for n in model_admin.get_list_display(request)
            if n in people and n not in editable
        ]
        by_login += [
            f"{model.__name__} filter {n}" for n in model_admin.get_list_filter(request) if n in people
        ]
        for obj in (None, model()):
            readonly = set(model_admin.get_readonly_fields(request, obj))
            if obj is not None and not model_admin.has_change_permission(request, obj):
                readonly |= set(flatten_fieldsets(model_admin.get_fieldsets(request, obj)))
            shown = flatten_fieldsets(model_admin.get_fieldsets(request, obj))
            by_login += [f"{model.__name__} field {n}" for n in shown if n in people and n in readonly]
    assert by_login == []


@pytest.fixture
def ivanova(db: Any) -> Any:
    return get_user_model().objects.create_user("ivanova", first_name="Мария", last_name="Иванова")


@pytest.fixture
def ru_admin(admin_user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    client.force_login(admin_user)
    return client


def test_a_person_without_a_name_goes_by_the_login() -> None:
    user = get_user_model()(username="petrov")
    assert person_name(user) == "petrov"
    assert person_name(get_user_model()(username="x", first_name="Пётр", last_name="Петров")) == "Пётр Петров"
    assert person_name(None) == ""


@pytest.mark.django_db
def test_the_contact_list_names_the_personal_manager_in_its_column_and_filter(
    ru_admin: Client, ivanova: Any
) -> None:
    from contacts.models import Contact

    get_user_model().objects.create_user("petrov")  # no name: the login
    Contact.objects.create(name="ООО Ромашка", personal_manager=ivanova)
    response = ru_admin.get("/admin/contacts/contact/")
    page = response.content.decode()
    assert page.count("Мария Иванова") >= 2  # the column and the filter
    cl = response.context["cl"]
    filters = {spec.title: [c["display"] for c in spec.choices(cl)] for spec in cl.filter_specs}
    managers = next(v for k, v in filters.items() if "менеджер" in str(k))
    assert "Мария Иванова" in managers
    assert "petrov" in managers
    assert "ivanova" not in managers
    # The filter still filters.
    filtered = ru_admin.get(f"/admin/contacts/contact/?personal_manager__id__exact={ivanova.pk}")
    assert filtered.context["cl"].result_count == 1


@pytest.mark.django_db
def test_a_click_to_call_request_names_who_clicked(ru_admin: Client, ivanova: Any) -> None:
    from calls.models import DialRequest

    dial = DialRequest.objects.create(user=ivanova, number="+74996497803", status="placed", code="placed")
    for url in ("/admin/calls/dialrequest/", f"/admin/calls/dialrequest/{dial.pk}/change/"):
        page = ru_admin.get(url).content.decode()
        assert "Мария Иванова" in page, url
        assert ">ivanova<" not in page, url


@pytest.mark.django_db
def test_the_workplace_list_chooses_operators_by_name(
    ru_admin: Client, ivanova: Any, integration: Any
) -> None:
    from integrations.models import Workplace

    Workplace.objects.create(integration=integration, sip_id="101", name="Офис", user=ivanova)
    page = ru_admin.get("/admin/integrations/workplace/").content.decode()
    assert f'<option value="{ivanova.pk}" selected>Мария Иванова</option>' in page


@pytest.mark.django_db
def test_a_contacts_personal_manager_is_named_next_to_its_box(ru_admin: Client, ivanova: Any) -> None:
    from contacts.models import Contact

    contact = Contact.objects.create(name="ООО Ромашка", personal_manager=ivanova)
    page = ru_admin.get(f"/admin/contacts/contact/{contact.pk}/change/").content.decode()
    assert ">Мария Иванова</a></strong>" in page


@pytest.mark.django_db
def test_an_operator_who_may_not_change_the_personal_manager_reads_the_name(ivanova: Any) -> None:
    from django.contrib.auth.models import Permission

    from contacts.models import Contact

    staff = get_user_model().objects.create_user("staff", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_contact", "change_contact"]))
    contact = Contact.objects.create(name="ООО Ромашка", personal_manager=ivanova)
    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    client.force_login(staff)
    response = client.get(f"/admin/contacts/contact/{contact.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Мария Иванова" in page
    assert 'name="personal_manager"' not in page


@pytest.mark.django_db
def test_an_api_tokens_owner_is_named_on_its_page(ru_admin: Client, ivanova: Any) -> None:
    from api.models import ApiToken
    from api.services import api_token_fill

    token = ApiToken(user=ivanova, name="CRM sync")
    api_token_fill(token=token)
    token.save()
    page = ru_admin.get(f"/admin/api/apitoken/{token.pk}/change/").content.decode()
    assert ">Мария Иванова</a>" in page
