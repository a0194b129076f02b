"""Every field the admin shows of our models has a label of its own, translated: Django's fallback (the
field's name, e.g. "Integration:" or a column "LEG") is English whatever the language."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.utils import translation

OUR_APPS = {"api", "calls", "contacts", "integrations", "monitoring", "webhooks"}


def test_every_field_of_our_models_in_the_admin_has_a_russian_label() -> None:
    unlabeled = []
    for model in apps.get_models():
        if model._meta.app_label not in OUR_APPS or not admin.site.is_registered(model):
            continue
        for field in model._meta.get_fields():
            if not getattr(field, "concrete", False) or field.auto_created or field.primary_key:
                continue
            default = field.name.replace("_", " ")
            with translation.override("ru"):
                label = str(field.verbose_name)
            if label == default:
                unlabeled.append(f"{model._meta.label}.{field.name}")
    assert unlabeled == []


def test_no_two_fields_of_a_model_share_a_russian_label() -> None:
    """A click-to-call request's page had two fields both called «Ответ» (the answer shown, the time of it)."""
    shared = []
    for model in apps.get_models():
        if model._meta.app_label not in OUR_APPS or not admin.site.is_registered(model):
            continue
        seen: dict[str, str] = {}
        for field in model._meta.get_fields():
            if not getattr(field, "concrete", False) or field.auto_created:
                continue
            with translation.override("ru"):
                label = str(field.verbose_name).lower()
            if label in seen:
                shared.append(f"{model._meta.label}: {seen[label]} and {field.name} are both «{label}»")
            seen[label] = field.name
    assert shared == []


# Names that are the same in Russian: an abbreviation.
SAME_IN_RUSSIAN = {"API"}


@pytest.mark.django_db
def test_every_app_in_the_admin_menu_has_a_russian_name(admin_user: Any) -> None:
    """Third-party apps too: django-axes names none, and its section read "Axes"."""
    client = Client()
    client.force_login(admin_user)
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    names = re.findall(r'<a href="/admin/[a-z_]+/" class="section"[^>]*>([^<]+)</a>', page)
    assert len(names) >= 8, names
    english = [n for n in names if n not in SAME_IN_RUSSIAN and not re.search("[а-яА-ЯёЁ]", n)]
    assert english == []
    assert "Попытки входа" in names


@pytest.mark.django_db
def test_the_login_attempts_list_is_in_russian(admin_user: Any, settings: Any) -> None:
    """django-axes' own Russian lacks its list's filter and status ("Locked Out"): our catalog has them."""
    from axes.models import AccessAttempt
    from django.utils import timezone

    AccessAttempt.objects.create(
        username="ivanova",
        ip_address="10.0.0.7",
        user_agent="Firefox",
        attempt_time=timezone.now(),
        failures_since_start=settings.AXES_FAILURE_LIMIT,
        get_data="",
        post_data="",
        http_accept="text/html",
        path_info="/accounts/login/",
    )
    client = Client()
    client.force_login(admin_user)
    page = client.get("/admin/axes/accessattempt/").content.decode()
    assert "Заблокирован" in page
    assert "Locked Out" not in page
