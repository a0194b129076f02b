"""The admin reads as Russian, not as Russian words glued to numbers: a change list's count ("5 контакты"
cannot decline), a day in the date hierarchy ("4 Декабрь"), dates in one format with our pages
("03.12.2026 15:07"), an empty value as "—". Read from the registered admins, so a new model is covered."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from django.utils import formats, translation

OUR_APPS = {"api", "calls", "contacts", "integrations", "monitoring", "webhooks"}


def _our_change_lists() -> list[str]:
    urls = []
    for model in apps.get_models():
        meta = model._meta
        if meta.app_label in OUR_APPS and admin.site.is_registered(model):
            urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    return urls


@pytest.fixture
def ru_admin(admin_user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    client.force_login(admin_user)
    return client


@pytest.mark.django_db
def test_every_change_list_counts_its_rows_in_a_phrase_russian_can_say(ru_admin: Client) -> None:
    from contacts.models import Contact

    for name in ("Анна", "Борис", "Вера", "Глеб", "Дина"):
        Contact.objects.create(name=name)
    glued = []
    for url in _our_change_lists():
        response = ru_admin.get(url)
        context = getattr(response, "context_data", None) or {}
        cl = context.get("cl")
        if cl is None:
            continue  # a page of its own (the health page), not a change list
        page = response.content.decode()
        with translation.override("ru"):
            plural = str(cl.opts.verbose_name_plural)
        if f"{cl.result_count} {plural}" in page:
            glued.append(url)
        assert f"Всего: {cl.result_count}" in page, url
    assert glued == []
    assert "Всего: 5" in ru_admin.get("/admin/contacts/contact/").content.decode()


@pytest.mark.django_db
def test_the_count_reads_in_english_too(admin_user: Any, settings: Any) -> None:
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(admin_user)
    assert "Total: 0" in client.get("/admin/contacts/contact/").content.decode()


def test_a_day_of_a_month_takes_the_genitive() -> None:
    day = datetime(2026, 12, 4, tzinfo=UTC).date()
    with translation.override("ru"):
        assert formats.date_format(day, "MONTH_DAY_FORMAT") == "4 декабря"
        # The month alone stays in the nominative (the date hierarchy's months).
        assert formats.date_format(day, "YEAR_MONTH_FORMAT") == "Декабрь 2026 г."
    with translation.override("en"):
        assert formats.date_format(day, "MONTH_DAY_FORMAT") == "December 4"


@pytest.mark.django_db
def test_the_date_hierarchy_names_days_in_the_genitive(ru_admin: Client, integration: Any) -> None:
    from calls.models import Call

    Call.objects.create(
        integration=integration, call_key="c-1", started_at=datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    )
    page = ru_admin.get("/admin/calls/call/?started_at__year=2026&started_at__month=12").content.decode()
    assert "4 декабря" in page
    assert "4 Декабрь" not in page


@pytest.mark.django_db
def test_admin_dates_read_as_on_our_pages(ru_admin: Client, integration: Any) -> None:
    from calls.models import Call

    call = Call.objects.create(
        integration=integration, call_key="c-1", started_at=datetime(2026, 12, 3, 12, 7, tzinfo=UTC)
    )
    # Moscow time, as every page shows it.
    for url in ("/admin/calls/call/", f"/admin/calls/call/{call.pk}/change/"):
        page = ru_admin.get(url).content.decode()
        assert "03.12.2026 15:07" in page, url
        assert not re.search(r"\d+ декабря 2026 г\. \d+:\d+", page), url


def _labels(page: str) -> list[str]:
    """The labels of a change form's fields (editable and read-only)."""
    return [re.sub(r"\s+", " ", t).strip() for t in re.findall(r"<label[^>]*>([^<]+):</label>", page)]


@pytest.mark.django_db
def test_every_label_of_the_integration_page_is_capitalised(ru_admin: Client, integration: Any) -> None:
    page = ru_admin.get(f"/admin/integrations/integration/{integration.pk}/change/").content.decode()
    labels = _labels(page)
    assert "Адрес сервера OAuth" in labels
    assert "Адрес API" in labels
    assert [label for label in labels if not label[:1].isupper()] == []


@pytest.mark.django_db
def test_the_integration_page_has_one_date_format(ru_admin: Client, integration: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    integration.last_sync_at = datetime(2026, 12, 4, 13, 3, tzinfo=UTC)
    # A rotated Redirect URI: the old one still accepted for a while.
    integration.previous_notify_token = "old-token"
    integration.previous_notify_token_expires_at = timezone.now() + timedelta(hours=1)
    integration.save()
    page = ru_admin.get(f"/admin/integrations/integration/{integration.pk}/change/").content.decode()
    assert "04.12.2026 16:03" in page
    assert "принимается до" in page
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", page)
    assert not re.search(r"\d+ [а-я]+ \d{4} г\.", page)


@pytest.mark.django_db
def test_an_empty_value_reads_as_a_dash_everywhere_in_the_admin(ru_admin: Client, integration: Any) -> None:
    assert admin.site.empty_value_display == "—"
    page = ru_admin.get(f"/admin/integrations/integration/{integration.pk}/change/").content.decode()
    # The last error (none yet): Django's default was a hyphen.
    assert re.search(r'Последняя ошибка:</label>\s*<div class="readonly">—</div>', page)
    assert '<div class="readonly">-</div>' not in page


@pytest.mark.django_db
def test_the_audit_trail_sums_up_each_entry_in_russian(ru_admin: Client) -> None:
    """The audit trail's change list read "4 changes: raw, e164, kind, contact" under "CORRELATION ID": the
    count declines, the fields go by their names, the header is Russian."""
    from contacts.services import contact_create

    contact_create(name="Ольга Смирнова", numbers=["+79219462761"])
    html = ru_admin.get(reverse("admin:auditlog_logentry_changelist")).content.decode()
    summaries = re.findall(r'<td class="field-msg_short">(.*?)</td>', html)
    assert summaries and all(re.match(r"\d+ изменени(е|я|й): ", s) for s in summaries), summaries
    assert not re.search(r"\d+ changes?:", html)
    assert "Correlation ID" not in html and "ID корреляции" in html
    contact = next(s for s in summaries if "имя" in s.lower())
    assert "notes" not in contact and "заметки" in contact.lower(), contact


def test_the_audit_summary_declines_its_count() -> None:
    with translation.override("ru"):
        words = [
            translation.ngettext("%(count)d change: %(fields)s", "%(count)d changes: %(fields)s", n)
            % {"count": n, "fields": "имя"}
            for n in (1, 3, 5, 21)
        ]
    assert words == ["1 изменение: имя", "3 изменения: имя", "5 изменений: имя", "21 изменение: имя"]


@pytest.mark.django_db
def test_an_audit_entrys_time_reads_as_on_our_pages(ru_admin: Client) -> None:
    """An entry's page showed its time as Python prints it ("2026-12-03 15:07:00.185291+03:00")."""
    from auditlog.models import LogEntry

    from contacts.services import contact_create

    contact_create(name="Ольга Смирнова")
    entry = LogEntry.objects.latest("pk")
    LogEntry.objects.filter(pk=entry.pk).update(timestamp=datetime(2026, 12, 3, 12, 7, 0, 185291, tzinfo=UTC))
    for url in ("/admin/auditlog/logentry/", f"/admin/auditlog/logentry/{entry.pk}/change/"):
        page = ru_admin.get(url).content.decode()
        assert "03.12.2026 15:07" in page, url
        assert "2026-12-03" not in page, url
