"""A staff user with only the *view* permission of a model reads its rows in the admin and changes nothing:
no admin action runs for them unless it says which permission it needs and they have it, and the page of a
row with a secret (the integration's client secret and notify URL, a webhook's signing secret) shows them
the mask, never the secret (README "Permissions in the admin").

Before: Django offers an action that names no permission to everyone who may open the list, so a view-only
user could revoke every API token, regenerate a webhook's signing secret (and read the new one on the
page that answers), or apply notifications again; and Django shows a view-only user each field of the
page by its value, so the write-only secrets appeared in plain text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from api.models import ApiToken
from api.services import api_token_create
from integrations.models import Integration, NotificationEvent
from mttcrm.audit import SECRET_MASK
from webhooks.models import WebhookSubscription

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "whsec_" + "S3cr3t" * 8
# A library's action that names no permission, and why it may stay so: django-axes' clean-up deletes only
# login attempts whose cool-off has passed (what it does by itself on the next login anyway).
UNGUARDED_ON_PURPOSE = {"axes.AccessAttempt: cleanup_expired_attempts"}


def test_every_admin_action_names_the_permission_it_needs() -> None:
    """An action without ``permissions`` is offered to whoever may open the list (the view permission)."""
    unguarded = []
    for model, model_admin in admin.site._registry.items():
        for func, name, _description in model_admin._get_base_actions():
            if not getattr(func, "allowed_permissions", ()):
                unguarded.append(f"{model._meta.label}: {name}")
    assert sorted(set(unguarded) - UNGUARDED_ON_PURPOSE) == []


def _staff(codenames: list[str]) -> Any:
    user = get_user_model().objects.create_user("clerk", password=None, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return get_user_model().objects.get(pk=user.pk)  # no cached permissions


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@dataclass(frozen=True)
class Action:
    changelist: str
    action: str
    view: str
    change: str
    make: Callable[[Any], Any]
    done: Callable[[Any], bool]


def _token(integration: Any) -> ApiToken:
    owner = get_user_model().objects.create_user("owner", password=None)
    return api_token_create(user=owner, name="crm sync")[0]


def _subscription(integration: Any) -> WebhookSubscription:
    return WebhookSubscription.objects.create(
        name="ERP", url="https://erp.example.com/hook", events=["call.ended"], secret=WEBHOOK_SECRET
    )


def _notification(integration: Any) -> NotificationEvent:
    return NotificationEvent.objects.create(integration=integration, body={"x": 1}, fingerprint="f" * 64)


REAPPLIED: list[int] = []

ACTIONS = {
    "revoke API tokens": Action(
        "/admin/api/apitoken/",
        "revoke",
        "view_apitoken",
        "change_apitoken",
        _token,
        lambda token: ApiToken.objects.get(pk=token.pk).revoked_at is not None,
    ),
    "regenerate a webhook secret": Action(
        "/admin/webhooks/webhooksubscription/",
        "regenerate_secret",
        "view_webhooksubscription",
        "change_webhooksubscription",
        _subscription,
        lambda sub: WebhookSubscription.objects.get(pk=sub.pk).secret != WEBHOOK_SECRET,
    ),
    "apply notifications again": Action(
        "/admin/integrations/notificationevent/",
        "reapply",
        "view_notificationevent",
        "change_notificationevent",
        _notification,
        lambda event: event.pk in REAPPLIED,
    ),
}


@dataclass(frozen=True)
class _Queued:
    queued: bool = True
    left_because: str = ""


@pytest.fixture
def reapply_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records what "apply again" was asked for (the applier itself is tested in tests/integrations)."""
    from integrations import admin as integrations_admin

    REAPPLIED.clear()

    def record(*, event_id: int) -> _Queued:
        REAPPLIED.append(event_id)
        return _Queued()

    monkeypatch.setattr(integrations_admin, "notification_reapply", record)


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_a_view_only_user_cannot_run_an_action(
    integration: Integration, reapply_recorded: None, name: str
) -> None:
    case = ACTIONS[name]
    row = case.make(integration)
    client = _client(_staff([case.view]))
    page = client.get(case.changelist)
    assert page.status_code == 200
    form = page.context["action_form"]  # None: no action at all on the page
    offered = set() if form is None else {value for value, _label in form.fields["action"].choices}
    assert case.action not in offered

    answer = client.post(case.changelist, {"action": case.action, "_selected_action": [row.pk]})
    assert answer.status_code in (200, 302)
    assert not case.done(row)
    assert WEBHOOK_SECRET[6:] not in answer.content.decode()


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_the_change_permission_runs_it(integration: Integration, reapply_recorded: None, name: str) -> None:
    case = ACTIONS[name]
    row = case.make(integration)
    client = _client(_staff([case.view, case.change]))
    client.post(case.changelist, {"action": case.action, "_selected_action": [row.pk]})
    assert case.done(row)


# --- secrets on a row's page ------------------------------------------------------------------------


def _integration_page(integration: Integration) -> tuple[str, list[str]]:
    return (
        f"/admin/integrations/integration/{integration.pk}/change/",
        ["secret-1", integration.notify_token, "access-token-1", "refresh-token-1"],
    )


def _webhook_page(integration: Integration) -> tuple[str, list[str]]:
    subscription = _subscription(integration)
    return (f"/admin/webhooks/webhooksubscription/{subscription.pk}/change/", [WEBHOOK_SECRET])


SECRET_PAGES: dict[str, tuple[str, Callable[[Integration], tuple[str, list[str]]]]] = {
    "integration": ("view_integration", _integration_page),
    "webhook subscription": ("view_webhooksubscription", _webhook_page),
}


@pytest.mark.parametrize("name", sorted(SECRET_PAGES))
def test_a_view_only_user_sees_the_mask_not_the_secret(integration: Integration, name: str) -> None:
    permission, page_of = SECRET_PAGES[name]
    url, secrets = page_of(integration)
    page = _client(_staff([permission])).get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert [s for s in secrets if s in body] == []
    assert SECRET_MASK in body


def test_the_integrations_page_still_shows_the_notify_url_to_who_may_change_it(
    integration: Integration, admin_client: Client
) -> None:
    """The Redirect URI is pasted into the MTT portal by the admin who connects the integration."""
    body = admin_client.get(f"/admin/integrations/integration/{integration.pk}/change/").content.decode()
    assert integration.notify_url in body
    assert "secret-1" not in body
