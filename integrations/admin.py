from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from csp.decorators import csp_update
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator, capfirst
from django.utils.timesince import timeuntil
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from calls.admin_dates import DateRangeAdmin
from calls.admin_words import words_column, words_filter
from mttcrm.admin_secrets import ReadOnlySecretsAdmin, masked
from mttcrm.audit import SECRET_MASK, AuditTrailAdminMixin, audit_change

from .inbox import notification_reapply
from .models import ExternalNumber, Integration, MttRequestLog, NotificationEvent, Terminal, Workplace
from .mtt.errors import MttError
from .parking import external_numbers_set_parking
from .reasons import reason_in_words
from .services import integration_oauth_start, integration_rotate_notify_token, integration_sync_directory
from .views import OAUTH_SESSION_KEY
from .words import event_words


class IntegrationForm(forms.ModelForm):
    # The secret is write-only in the admin: never rendered back into the page.
    client_secret = forms.CharField(
        label=_("Client secret"),
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text=_("Shown once in the MTT portal. Leave empty to keep the stored secret."),
    )

    # Capitalised as Django does a model field's label (these two are declared here for https).
    oauth_url = forms.URLField(label=capfirst(_("OAuth server URL")), assume_scheme="https")
    api_url = forms.URLField(label=capfirst(_("API URL")), assume_scheme="https")

    class Meta:
        model = Integration
        fields = ["name", "client_id", "client_secret", "oauth_url", "api_url"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            self.initial.setdefault("oauth_url", Integration._meta.get_field("oauth_url").get_default())
            self.initial.setdefault("api_url", Integration._meta.get_field("api_url").get_default())

    def clean_client_secret(self) -> str:
        value: str = self.cleaned_data.get("client_secret") or ""
        if not value and not (self.instance and self.instance.pk and self.instance.client_secret):
            raise forms.ValidationError(_("The client secret is required."))
        return value or (self.instance.client_secret if self.instance else "")


def _expiry(value: Any) -> str:
    if not value:
        return "—"
    delta = value - timezone.now()
    seconds = int(delta.total_seconds())
    local = timezone.localtime(value).strftime("%d.%m.%Y %H:%M")
    if seconds <= 0:
        return f"{local} ({_('expired')})"
    return f"{local} ({_('in %(time)s') % {'time': timeuntil(value)}})"


# What a CSP source may name of an origin's host: a DNS name or IPv4 address and an optional port. Anything
# else (user info, IPv6, a ";" or a space that would end the directive) is never put into a policy.
_CSP_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def oauth_form_action_origin(oauth_url: str) -> str | None:
    """The origin of an integration's OAuth server as a CSP source (``https://oauth.mtt.ru``), or None when
    the URL has none that a policy can name safely."""
    parts = urlsplit(oauth_url)
    if parts.scheme not in ("http", "https") or not _CSP_HOST.fullmatch(parts.netloc):
        return None
    return f"{parts.scheme}://{parts.netloc.lower()}"


@admin.register(Integration)
class IntegrationAdmin(AuditTrailAdminMixin, ReadOnlySecretsAdmin, DateRangeAdmin):
    # A "View" link per row to that row's audit trail (django-auditlog).
    show_auditlog_history_link = True
    form = IntegrationForm
    # A user who may only view the integration sees neither the client secret nor the notify URL's token.
    read_only_secrets = {"client_secret": "client_secret_masked", "redirect_uri": "redirect_uri_masked"}
    list_display = ["name", "status", "access_expiry", "last_sync_at", "last_notification_at", "has_error"]
    list_filter = ["status"]
    search_fields = ["name", "client_id"]
    actions = ["rotate_notify_url"]
    readonly_fields = [
        "redirect_uri",
        "previous_redirect_uri",
        "status",
        "access_expiry",
        "refresh_expiry",
        "tokens_refreshed_at",
        "last_sync_at",
        "last_notification_at",
        "last_error",
        "last_error_at",
        "actions_panel",
    ]
    fieldsets = [
        (None, {"fields": ["name", "client_id", "client_secret", "oauth_url", "api_url"]}),
        (
            _("Connection"),
            {
                "fields": [
                    "redirect_uri",
                    "previous_redirect_uri",
                    "status",
                    "actions_panel",
                    "access_expiry",
                    "refresh_expiry",
                    "tokens_refreshed_at",
                    "last_sync_at",
                    "last_notification_at",
                    "last_error",
                    "last_error_at",
                ]
            },
        ),
    ]

    def get_fieldsets(self, request: HttpRequest, obj: Integration | None = None) -> Any:
        if obj is None:
            return [(None, {"fields": ["name", "client_id", "client_secret", "oauth_url", "api_url"]})]
        return super().get_fieldsets(request, obj)

    class Media:
        # The Copy button and select-on-click (no inline handlers: Content-Security-Policy).
        js = ["js/admin_integration.js"]
        css = {"all": ["css/admin_integration.css"]}

    @admin.display(description=_("Redirect URI (paste into the MTT portal)"))
    def redirect_uri(self, obj: Integration) -> str:
        return format_html(
            '<input type="text" readonly value="{}" id="redirect-uri" data-select-on-click> '
            '<button type="button" class="button" data-copy-from="redirect-uri">{}</button>',
            obj.notify_url,
            _("Copy"),
        )

    @admin.display(description=_("Client secret"))
    def client_secret_masked(self, obj: Integration) -> str:
        return masked(obj.client_secret)

    @admin.display(description=_("Redirect URI (paste into the MTT portal)"))
    def redirect_uri_masked(self, obj: Integration) -> str:
        # The path without its token: the token is the credential of the notify URL.
        return obj.notify_url.replace(obj.notify_token, SECRET_MASK) if obj.notify_token else "—"

    @admin.display(description=_("previous Redirect URI"))
    def previous_redirect_uri(self, obj: Integration) -> str:
        expires = obj.previous_notify_token_expires_at
        if not obj.previous_notify_token or expires is None or expires <= timezone.now():
            return "—"
        return _(
            "still accepted until %(time)s: paste the new Redirect URI into the MTT portal before then"
        ) % {"time": timezone.localtime(expires).strftime("%d.%m.%Y %H:%M")}

    @admin.action(description=_("Rotate the notify URL (Redirect URI)"), permissions=["change"])
    def rotate_notify_url(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        grace = timedelta(hours=settings.NOTIFY_TOKEN_GRACE_HOURS)
        for pk in queryset.values_list("pk", flat=True):
            rotation = integration_rotate_notify_token(integration_id=pk, grace=grace)
            if rotation.previous_valid_until:
                until = timezone.localtime(rotation.previous_valid_until).strftime("%d.%m.%Y %H:%M")
                text = _(
                    "%(integration)s: the new Redirect URI is %(url)s — paste it into the MTT portal "
                    "(Open API → My integrations). The old one is accepted until %(until)s."
                ) % {"integration": rotation.integration, "url": rotation.new_url, "until": until}
            else:
                text = _(
                    "%(integration)s: the new Redirect URI is %(url)s — paste it into the MTT portal "
                    "(Open API → My integrations). The old one is refused from now on."
                ) % {"integration": rotation.integration, "url": rotation.new_url}
            messages.success(request, text)

    @admin.display(description=_("access token expires"))
    def access_expiry(self, obj: Integration) -> str:
        return _expiry(obj.access_token_expires_at)

    @admin.display(description=_("refresh token expires"))
    def refresh_expiry(self, obj: Integration) -> str:
        return _expiry(obj.refresh_token_expires_at)

    @admin.display(description=_("error"), boolean=True)
    def has_error(self, obj: Integration) -> bool:
        return bool(obj.last_error)

    @admin.display(description=_("actions"))
    def actions_panel(self, obj: Integration) -> str:
        # Both act (a Connect overwrites one in progress, a sync spends MTT's request budget), so they
        # POST with the CSRF token: a link from another site cannot press them. The buttons belong to
        # small forms outside the change form (change_form.html), so Enter in a field still saves.
        connect_label = _("Connect") if obj.status == Integration.Status.NOT_CONNECTED else _("Reconnect")
        return format_html(
            '<button type="submit" class="button" form="integration-connect">{}</button>&nbsp; '
            '<button type="submit" class="button" form="integration-sync">{}</button>',
            connect_label,
            _("Sync now"),
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Connect POSTs to connect_view, which answers 302 to the OAuth server; browsers check that redirect
        # against this page's CSP form-action too. So this page, and no other, also allows its own
        # integration's OAuth origin ("form-action 'self' https://oauth.mtt.ru"), enforced or report-only
        # as the settings choose (django-csp adds to whichever policy is configured).
        def page(request: HttpRequest) -> HttpResponseBase:
            return super(IntegrationAdmin, self).change_view(request, object_id, form_url, extra_context)

        render: Callable[[HttpRequest], HttpResponseBase] = page
        integration = self.get_object(request, unquote(object_id))
        origin = oauth_form_action_origin(integration.oauth_url) if integration else None
        if origin:
            allow = {"form-action": [origin]}
            render = csp_update(allow, REPORT_ONLY=True)(csp_update(allow)(render))
        return cast(HttpResponse, render(request))

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<int:pk>/connect/",
                self.admin_site.admin_view(require_POST(self.connect_view)),
                name="integrations_integration_connect",
            ),
            path(
                "<int:pk>/sync/",
                self.admin_site.admin_view(require_POST(self.sync_view)),
                name="integrations_integration_sync",
            ),
        ]
        return custom + super().get_urls()

    def connect_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        integration = get_object_or_404(Integration, pk=pk)
        if not self.has_change_permission(request, integration):
            return HttpResponse(status=403)
        try:
            url, state = integration_oauth_start(integration=integration)
        except MttError as exc:
            messages.error(request, exc.user_message)
            return HttpResponseRedirect(reverse("admin:integrations_integration_change", args=[pk]))
        request.session[OAUTH_SESSION_KEY] = {
            "state": state,
            "integration_id": integration.pk,
            "user_id": request.user.pk,
        }
        return HttpResponseRedirect(url)

    def sync_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        integration = get_object_or_404(Integration, pk=pk)
        if not self.has_change_permission(request, integration):
            return HttpResponse(status=403)
        try:
            result = integration_sync_directory(integration_id=integration.pk)
        except MttError as exc:
            messages.error(request, _("Sync failed: %(error)s") % {"error": exc.user_message})
        else:
            messages.success(request, _("Synced: %(result)s") % {"result": result.for_people()})
        return HttpResponseRedirect(reverse("admin:integrations_integration_change", args=[pk]))


@admin.register(Workplace)
class WorkplaceAdmin(AuditTrailAdminMixin, DateRangeAdmin):
    # A "View" link per row to that row's audit trail (django-auditlog).
    show_auditlog_history_link = True
    list_display = ["sip_id", "name", "user", "integration", "is_active", "synced_at"]
    list_filter = ["integration", "is_active", ("user", admin.EmptyFieldListFilter)]
    search_fields = ["sip_id", "name", "user__username", "user__first_name", "user__last_name"]
    list_editable = ["user"]
    readonly_fields = ["integration", "sip_id", "synced_at"]
    fields = ["integration", "sip_id", "name", "user", "is_active", "synced_at"]
    list_select_related = ["user", "integration"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # workplaces come from the PBX (sync)


@admin.register(Terminal)
class TerminalAdmin(DateRangeAdmin):
    list_display = ["sip_id", "workplace", "integration", "is_active", "synced_at"]
    list_filter = ["integration", "is_active"]
    search_fields = ["sip_id", "workplace__sip_id", "workplace__name"]
    readonly_fields = ["integration", "sip_id", "workplace", "synced_at"]
    list_select_related = ["workplace", "integration"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class ExternalNumberForm(forms.ModelForm):
    """The "route to personal manager" switch: MTT is asked first (setParkingNumbers, guide §5.4) and
    the flag changes only when MTT confirmed; otherwise MTT's answer is shown on the field."""

    class Meta:
        model = ExternalNumber
        fields = ["is_parking", "is_active"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "is_parking" in self.changed_data and self.instance.pk and "is_parking" in cleaned:
            was = (
                ExternalNumber.objects.filter(pk=self.instance.pk).values_list("is_parking", flat=True).get()
            )
            try:
                external_numbers_set_parking(
                    integration=self.instance.integration,
                    numbers=[self.instance.number],
                    is_parking=bool(cleaned["is_parking"]),
                )
            except MttError as exc:
                self.add_error("is_parking", exc.user_message)
            else:
                # The service writes the flag with a bulk update, which the audit trail does not see.
                audit_change(self.instance, {"is_parking": (was, bool(cleaned["is_parking"]))})
        return cleaned


@admin.register(ExternalNumber)
class ExternalNumberAdmin(AuditTrailAdminMixin, DateRangeAdmin):
    # A "View" link per row to that row's audit trail (django-auditlog).
    show_auditlog_history_link = True
    form = ExternalNumberForm
    list_display = ["number", "type", "is_parking", "integration", "is_active", "synced_at"]
    list_display_links = ["number"]
    # The same form (and its call to MTT) checks every switched row of the list.
    list_editable = ["is_parking"]
    list_filter = ["integration", "is_active", "is_parking"]
    search_fields = ["number"]
    readonly_fields = ["integration", "number", "normalized", "type", "synced_at"]
    actions = ["parking_on", "parking_off"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[forms.ModelForm]:
        # Django's list form would save the flag without asking MTT: use the switch's form there too.
        kwargs.setdefault("form", ExternalNumberForm)
        return super().get_changelist_form(request, **kwargs)

    @admin.action(description=_("Route calls to the personal manager (parking on)"), permissions=["change"])
    def parking_on(self, request: HttpRequest, queryset: QuerySet[ExternalNumber]) -> None:
        self._set_parking(request, queryset, is_parking=True)

    @admin.action(
        description=_("Stop routing calls to the personal manager (parking off)"), permissions=["change"]
    )
    def parking_off(self, request: HttpRequest, queryset: QuerySet[ExternalNumber]) -> None:
        self._set_parking(request, queryset, is_parking=False)

    def _set_parking(
        self, request: HttpRequest, queryset: QuerySet[ExternalNumber], *, is_parking: bool
    ) -> None:
        # One setParkingNumbers per integration: the numbers of one PBX in one request.
        by_integration: dict[int, tuple[Integration, list[str]]] = {}
        rows = list(queryset.select_related("integration"))
        for row in rows:
            by_integration.setdefault(row.integration_id, (row.integration, []))[1].append(row.number)
        for integration, numbers in by_integration.values():
            try:
                external_numbers_set_parking(integration=integration, numbers=numbers, is_parking=is_parking)
                for row in rows:
                    if row.integration_id == integration.pk:
                        audit_change(row, {"is_parking": (row.is_parking, is_parking)})
            except MttError as exc:
                messages.error(
                    request,
                    _("%(integration)s: MTT did not change parking, nothing was changed: %(error)s")
                    % {"integration": integration, "error": exc.user_message},
                )
                continue
            done = (
                _("%(integration)s: calls to %(numbers)s now go to the personal manager.")
                if is_parking
                else _("%(integration)s: calls to %(numbers)s follow the PBX's routing again.")
            )
            messages.success(request, done % {"integration": integration, "numbers": ", ".join(numbers)})


@admin.register(NotificationEvent)
class NotificationEventAdmin(DateRangeAdmin):
    list_display = ["received_at", "integration", "event_in_words", "status", "attempts", "short_error"]
    list_filter = ["integration", words_filter(NotificationEvent, "event", event_words), "status"]
    search_fields = ["fingerprint", "body__result__callInfo__call__id"]
    date_hierarchy = "received_at"
    readonly_fields = [
        "event_in_words" if f.name == "event" else f.name for f in NotificationEvent._meta.fields
    ] + ["error_in_words"]
    exclude = ["event"]  # shown in words, read-only
    # MTT's event name in words (integrations/words.py); the body keeps it as sent.
    event_in_words = words_column(NotificationEvent, "event", event_words)
    actions = ["reapply"]

    @admin.display(description=_("error"))
    def short_error(self, obj: NotificationEvent) -> str:
        return Truncator(reason_in_words(obj.error)).chars(80)

    @admin.display(description=_("why, in words"))
    def error_in_words(self, obj: NotificationEvent) -> str:
        # The stored reason is English (as logged and answered to MTT): the admin reads it translated.
        return reason_in_words(obj.error) if obj.error else "—"

    @admin.action(description=_("Apply the selected notifications again"), permissions=["reapply"])
    def reapply(self, request: HttpRequest, queryset: QuerySet[NotificationEvent]) -> None:
        queued, left = 0, 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                outcome = notification_reapply(event_id=pk)
            except Exception as exc:
                messages.error(request, _("Notification %(id)s: %(error)s") % {"id": pk, "error": exc})
                continue
            if outcome.queued:
                queued += 1
            elif outcome.left_because != "gone":  # deleted meanwhile: nothing to say of it
                left += 1
        if queued:
            messages.success(request, _("%(count)d notification(s) applied again.") % {"count": queued})
        if left:
            messages.warning(
                request,
                _(
                    "%(count)d notification(s) left as they are: they are not notifications we understand, "
                    "so applying them again would change nothing (the reason is in their error)."
                )
                % {"count": left},
            )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_reapply_permission(self, request: HttpRequest) -> bool:
        # The rows are read-only in the admin, but applying one again writes calls: the model's change
        # permission, not the view permission that lets a user read the list.
        return bool(request.user.has_perm("integrations.change_notificationevent"))


@admin.register(MttRequestLog)
class MttRequestLogAdmin(DateRangeAdmin):
    list_display = [
        "created_at",
        "integration",
        "method",
        "status_code",
        "ok",
        "duration_ms",
        "limiter_wait_ms",
    ]
    list_filter = ["integration", "method", "ok"]
    readonly_fields = [f.name for f in MttRequestLog._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[MttRequestLog]:
        return super().get_queryset(request).select_related("integration")
