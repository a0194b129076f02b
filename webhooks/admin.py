"""Admin → Webhooks: subscriptions (URL checked against the SSRF rules; the signing secret shown once, on the
page that answers its creation or regeneration, then only its beginning), and the delivery log with every
attempt and the receiver's answers."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from calls.admin_dates import DateRangeAdmin
from mttcrm.admin_secrets import ReadOnlySecretsAdmin, masked

from .models import Event, WebhookAttempt, WebhookDelivery, WebhookSubscription
from .safety import WebhookUrlRefused, webhook_url_check
from .services import (
    webhook_secret_generate,
    webhook_secret_valid,
    webhook_subscription_save,
    webhook_subscriptions_changed,
)
from .words import disabled_reason_in_words, error_in_words

# What the subscription's page shows of its secret: "whsec_" and 4 characters (24 of its 256 bits).
SHOWN_CHARS = len("whsec_") + 4


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=2000, assume_scheme="https")
    events = forms.MultipleChoiceField(
        label=_("Events"), choices=Event.choices, widget=forms.CheckboxSelectMultiple
    )
    secret = forms.CharField(
        label=_("Signing secret"),
        required=False,
        strip=True,
        # Write-only, like the integration's client secret: never rendered back (a form with an error
        # would otherwise show the secret typed into it).
        widget=forms.PasswordInput(render_value=False, attrs={"size": 60, "autocomplete": "off"}),
        help_text=_(
            "Standard Webhooks format, whsec_ and base64. Leave empty to keep the current one (a new "
            "subscription gets a generated one)."
        ),
    )

    class Meta:
        model = WebhookSubscription
        fields = ["name", "url", "events", "secret", "allow_private_network", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["secret"] = ""

    def clean_secret(self) -> str:
        value: str = self.cleaned_data.get("secret") or ""
        if value and not webhook_secret_valid(value):
            raise forms.ValidationError(
                _("The secret must be whsec_ followed by at least 24 bytes in base64.")
            )
        return value or (self.instance.secret if self.instance and self.instance.pk else "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        url = data.get("url")
        if url:
            try:
                webhook_url_check(url, allow_private=bool(data.get("allow_private_network")))
            except WebhookUrlRefused as exc:
                self.add_error("url", _("This URL may not be used: %(reason)s") % {"reason": exc.words})
        return data


class WebhookAttemptInline(admin.TabularInline):
    class Media:
        # A wide inline scrolls in its box, not the whole page (the file says why).
        css = {"all": ["css/admin_inlines.css"]}

    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ["at", "response_status", "duration_ms", "failure_in_words", "error", "response_body"]
    readonly_fields = ["at", "response_status", "duration_ms", "failure_in_words", "error", "response_body"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("why it failed, in words"))
    def failure_in_words(self, obj: WebhookAttempt) -> str:
        # The stored error is English (as logged): the admin reads it, and a status, in words.
        return error_in_words(obj.error, obj.response_status) or "—"


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ReadOnlySecretsAdmin, DateRangeAdmin):
    form = WebhookSubscriptionForm
    # A user who may only view the subscription gets its beginning (signing_secret), never the secret.
    read_only_secrets = {"secret": "secret_masked"}
    list_display = ["name", "url", "event_list", "is_active", "failing_since", "disabled_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "url"]
    readonly_fields = [
        "signing_secret",
        "created_at",
        "failing_since",
        "disabled_at",
        "disabled_reason_in_words",
    ]
    actions = ["regenerate_secret"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["name", "url", "events", "secret", "allow_private_network", "is_active"]
        if obj is None:
            return fields
        return [
            *fields,
            "signing_secret",
            "created_at",
            "failing_since",
            "disabled_at",
            "disabled_reason_in_words",
        ]

    @admin.display(description=_("why it was disabled"))
    def disabled_reason_in_words(self, obj: WebhookSubscription) -> str:
        return disabled_reason_in_words(obj.disabled_reason) if obj.disabled_reason else "—"

    @admin.display(description=_("Events"))
    def event_list(self, obj: WebhookSubscription) -> str:
        return ", ".join(obj.events or [])

    @admin.display(description=_("Signing secret"))
    def secret_masked(self, obj: WebhookSubscription) -> str:
        return masked(obj.secret)

    @admin.display(description=_("Current signing secret (its beginning)"))
    def signing_secret(self, obj: WebhookSubscription) -> str:
        # Stored encrypted (FIELD_ENCRYPTION_KEYS), shown in full only once: here enough to tell which one
        # a receiver has.
        return format_html("<code>{}…</code>", obj.secret[:SHOWN_CHARS])

    def save_model(self, request: HttpRequest, obj: WebhookSubscription, form: Any, change: bool) -> None:
        generated = not obj.secret
        webhook_subscription_save(subscription=obj)
        if generated:
            # Kept on the request only, for response_add: the page that answers the save shows it once.
            request._webhook_secret_shown = [(obj, obj.secret)]  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: WebhookSubscription, post_url_continue: str | None = None
    ) -> HttpResponse:
        shown = getattr(request, "_webhook_secret_shown", None)
        if not shown:
            return super().response_add(request, obj, post_url_continue)
        return self._secrets_page(request, shown)

    def _secrets_page(
        self, request: HttpRequest, shown: list[tuple[WebhookSubscription, str]]
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": _("Webhook signing secrets"),
            "opts": self.opts,
            "shown": shown,
        }
        response = TemplateResponse(request, "webhooks/secrets_shown.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def delete_model(self, request: HttpRequest, obj: WebhookSubscription) -> None:
        super().delete_model(request, obj)
        webhook_subscriptions_changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        super().delete_queryset(request, queryset)
        webhook_subscriptions_changed()

    @admin.action(description=_("Generate a new signing secret"), permissions=["change"])
    def regenerate_secret(
        self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]
    ) -> HttpResponse:
        shown = []
        for subscription in queryset:
            subscription.secret = webhook_secret_generate()
            subscription.save(update_fields=["secret"])
            shown.append((subscription, subscription.secret))
        count = len(shown)
        self.message_user(
            request,
            ngettext(
                "%(count)d subscription has a new secret: update the receiver.",
                "%(count)d subscriptions have a new secret: update the receivers.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )
        # The new secrets, once, on the page that answers the action (never in a message: messages are
        # stored in the session).
        return self._secrets_page(request, shown)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(DateRangeAdmin):
    list_display = [
        "created_at",
        "event_type",
        "message_id",
        "subscription",
        "status",
        "attempts",
        "response_status",
        "failure_in_words",
        "next_attempt_at",
    ]
    list_filter = ["status", "event_type", "subscription"]
    search_fields = ["message_id"]
    list_select_related = ["subscription"]
    inlines = [WebhookAttemptInline]
    readonly_fields = [
        "subscription",
        "event_type",
        "message_id",
        "payload",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "last_attempt_at",
        "delivered_at",
        "response_status",
        "response_body",
        "failure_in_words",
        "error",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("why it failed, in words"))
    def failure_in_words(self, obj: WebhookDelivery) -> str:
        # Delivered: nothing failed (an earlier attempt's error stays in the attempts' log).
        if obj.status == WebhookDelivery.Status.DELIVERED:
            return "—"
        return error_in_words(obj.error, obj.response_status) or "—"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
