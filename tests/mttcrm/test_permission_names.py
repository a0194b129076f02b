"""The admin's user and group forms name permissions in the admin's language (mttcrm/admin.py): Django stores
every permission's name in English ("Can add call"), and a Russian admin choosing who may do what read it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.utils import translation

from mttcrm.admin import permission_label, permission_name
from tests.mttcrm.settings_probe import fresh_env, run_python

# Abbreviations and names that are the same in Russian.
SAME_IN_RUSSIAN = {"API", "CRM", "MTT", "SIP", "IP", "Redis"}


def _latin_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[A-Za-z][A-Za-z_]+", text) if w not in SAME_IN_RUSSIAN]


@pytest.mark.django_db
def test_every_permission_reads_in_russian() -> None:
    english = []
    permissions = Permission.objects.select_related("content_type")
    assert permissions.count() > 100
    with translation.override("ru"):
        for permission in permissions:
            label = permission_label(permission)
            if _latin_words(label):
                english.append(label)
    assert english == []


@pytest.mark.django_db
def test_permission_names_say_what_they_allow() -> None:
    def named(codename: str) -> str:
        return permission_name(Permission.objects.get(codename=codename))

    with translation.override("ru"):
        assert named("add_call") == "Может добавлять: звонок"
        assert named("view_reports") == "Может смотреть отчёты по звонкам"
        assert named("listen_recording") == "Может слушать и скачивать записи звонков"
        assert named("merge_contact") == "Может объединять контакты"
    with translation.override("en"):
        # In English, what Django itself stored.
        for permission in Permission.objects.filter(
            content_type__app_label__in=["calls", "contacts", "auth"]
        ):
            assert permission_name(permission) == permission.name


@pytest.mark.django_db
def test_the_group_form_lists_permissions_in_russian_and_saves_the_chosen_ones(admin_user: Any) -> None:
    group = Group.objects.create(name="Старшие операторы")
    client = Client()
    client.force_login(admin_user)
    url = f"/admin/auth/group/{group.pk}/change/"
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Звонки | Может смотреть отчёты по звонкам" in page
    assert "Can view call reports" not in page
    assert "Can add" not in page

    reports = Permission.objects.get(codename="view_reports")
    listen = Permission.objects.get(codename="listen_recording")
    answer = client.post(
        url,
        {"name": group.name, "permissions": [reports.pk, listen.pk]},
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    assert answer.status_code == 302
    assert set(group.permissions.all()) == {reports, listen}


@pytest.mark.django_db
def test_the_user_form_lists_permissions_in_russian(admin_user: Any, operator_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    page = client.get(
        f"/admin/auth/user/{operator_user.pk}/change/", HTTP_ACCEPT_LANGUAGE="ru"
    ).content.decode()
    assert "Контакты | Может объединять контакты" in page
    assert "Can merge contacts" not in page
    assert "Can change" not in page


# Without Redis (`make run`) channels-lite is installed; its permissions read in Russian too. Its app and
# models exist only in such a process, so the labels are read in a fresh one (tests/mttcrm/settings_probe.py),
# of permissions built as Django's migrations build them (no database needed).
CHANNELS_LITE_PROBE = """
import django
django.setup()
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.utils import translation
from mttcrm.admin import permission_label
models = django.apps.apps.get_app_config("channels_lite").get_models()
with translation.override("ru"):
    for model in models:
        content_type = ContentType(app_label=model._meta.app_label, model=model._meta.model_name)
        for codename in ("add", "view"):
            permission = Permission(codename=f"{codename}_{content_type.model}", content_type=content_type)
            print(permission_label(permission))
"""


def test_the_permissions_of_channels_lite_read_in_russian_without_redis(tmp_path: Any) -> None:
    env = fresh_env(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "VAR_DIR": str(tmp_path)},
        without=("DJANGO_", "REDIS_", "DATABASE_", "CELERY_BROKER"),
    )
    result = run_python(CHANNELS_LITE_PROBE, env)
    assert result.returncode == 0, result.stderr
    labels = result.stdout.splitlines()
    assert "Живые соединения без Redis | Может добавлять: событие" in labels
    assert "Живые соединения без Redis | Может просматривать: подписка на группу" in labels
    assert len(labels) == 4
    assert [label for label in labels if _latin_words(label)] == []
