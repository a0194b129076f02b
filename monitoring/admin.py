"""Admin: the "Integration health" page (every fact and the open warnings) and the warning episodes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from calls.admin_dates import DateRangeAdmin
from integrations.models import Integration

from .models import HealthWarning, IntegrationHealth
from .selectors import (
    HealthFacts,
    HealthIssue,
    duration_words,
    integration_health,
    open_warnings,
    warnings_for,
)


def _staff(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff)


@dataclass
class _Panel:
    facts: HealthFacts
    issues: list[HealthIssue]
    episodes: list[HealthWarning]
    change_url: str

    @property
    def level(self) -> str:
        if self.facts.status == Integration.Status.NEEDS_RECONNECT or any(i.severe for i in self.issues):
            return "red"
        if self.issues:
            return "amber"
        return "green" if self.facts.connected else "off"

    @property
    def quiet_text(self) -> str:
        return duration_words(self.facts.quiet_for) if self.facts.quiet_for is not None else ""


@admin.register(IntegrationHealth)
class IntegrationHealthAdmin(admin.ModelAdmin):
    """Not a list of rows: the changelist is the health panel of every integration (staff only)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _staff(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _staff(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(self, request: HttpRequest, object_id: str, *args: Any, **kwargs: Any) -> HttpResponse:
        # One integration: its section of the panel.
        url = reverse("admin:monitoring_integrationhealth_changelist")
        return HttpResponseRedirect(f"{url}?id={object_id}" if object_id.isdigit() else url)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        now = timezone.now()
        integrations: QuerySet[Integration] = Integration.objects.order_by("name")
        wanted = request.GET.get("id", "")
        if wanted.isdigit():
            integrations = integrations.filter(pk=int(wanted))
        rows = list(integrations)
        episodes = open_warnings(integration_ids=[i.pk for i in rows])
        panels = []
        for integration in rows:
            facts = integration_health(integration, now=now)
            panels.append(
                _Panel(
                    facts=facts,
                    issues=warnings_for(facts),
                    episodes=[ep for ep in episodes if ep.integration_id == integration.pk],
                    change_url=reverse("admin:integrations_integration_change", args=[integration.pk]),
                )
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Integration health"),
            "opts": self.model._meta,
            "panels": panels,
            "filtered": wanted.isdigit(),
            "now": now,
            "warnings_url": reverse("admin:monitoring_healthwarning_changelist"),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/monitoring/health.html", context)


class OpenFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "open"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Open")), ("no", _("Cleared"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[HealthWarning]) -> QuerySet[HealthWarning]:
        if self.value() == "yes":
            return queryset.filter(cleared_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(cleared_at__isnull=False)
        return queryset


@admin.register(HealthWarning)
class HealthWarningAdmin(DateRangeAdmin):
    """The history of warning episodes (read-only: the health check writes them)."""

    list_display = ["integration", "kind", "opened_at", "last_seen_at", "cleared_at", "mailed_at"]
    list_filter = [OpenFilter, "kind", "integration"]
    list_select_related = ["integration"]
    readonly_fields = [
        "integration",
        "kind",
        "message",
        "opened_at",
        "last_seen_at",
        "cleared_at",
        "mailed_at",
    ]
    date_hierarchy = "opened_at"

    # Like the panel that links here: every staff user may read the history.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return _staff(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _staff(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
