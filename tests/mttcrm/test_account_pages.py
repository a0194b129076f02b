"""The account pages (password reset and change) are the CRM's pages, in Russian: not the Django admin's
("Администрирование Django", a "Главная" crumb into the admin) that an operator reached before, and the
login page leads to the reset ("Forgot your password?", README "Mail")."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

pytestmark = pytest.mark.django_db

ADMIN_LOOK = ("Django", "Главная", 'href="/admin/"', 'id="header"')


def _crm_page(page: str) -> None:
    assert 'class="topbar"' in page, "not in the CRM's layout"
    for sign in ADMIN_LOOK:
        assert sign not in page, f"the admin's look: {sign!r}"


def test_the_login_page_links_to_the_password_reset() -> None:
    page = Client().get("/accounts/login/").content.decode()
    assert 'href="/accounts/password_reset/"' in page and "Забыли пароль?" in page


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/accounts/password_reset/", ["Восстановление пароля", "Прислать ссылку", "Эл. почта"]),
        ("/accounts/password_reset/done/", ["Проверьте почту"]),
        ("/accounts/reset/Mw/not-a-token/", ["Ссылка не действует", "Запросить новую ссылку"]),
        ("/accounts/reset/done/", ["Пароль сохранён", 'href="/accounts/login/"']),
    ],
)
def test_the_password_reset_pages_are_the_crms_in_russian(path: str, words: list[str]) -> None:
    response = Client().get(path)
    assert response.status_code == 200
    page = response.content.decode()
    _crm_page(page)
    for word in words:
        assert word in page


def test_a_reset_link_from_the_mail_opens_the_new_password_form_and_sets_it(operator_user: Any) -> None:
    operator_user.email = "ivanova@example.com"
    operator_user.save()
    client = Client()
    client.post("/accounts/password_reset/", {"email": "ivanova@example.com"})
    assert len(mail.outbox) == 1
    link = re.search(r"/accounts/reset/[^/\s]+/[^/\s]+/", mail.outbox[0].body)
    assert link is not None
    form = client.get(link.group(0), follow=True)
    page = form.content.decode()
    _crm_page(page)
    assert "Новый пароль" in page and 'name="new_password1"' in page and "Сохранить пароль" in page
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "Kq7-лето-2026", "new_password2": "Kq7-лето-2026"}
    )
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    operator_user.refresh_from_db()
    assert operator_user.check_password("Kq7-лето-2026")


def test_the_password_change_pages_are_the_crms_in_russian(operator_user: Any) -> None:
    client = Client()
    client.force_login(operator_user)
    page = client.get("/accounts/password_change/").content.decode()
    _crm_page(page)
    assert "Изменить пароль" in page and 'name="old_password"' in page and "Сменить пароль" in page
    page = client.get("/accounts/password_change/done/").content.decode()
    _crm_page(page)
    assert "Пароль изменён" in page
