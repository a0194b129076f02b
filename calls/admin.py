from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Call, CallEvent, CallLeg


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CallLegInline(ReadOnlyInline):
    model = CallLeg
    fields = [
        "leg_id",
        "direction",
        "is_line_leg",
        "workplace",
        "last_state",
        "started_at",
        "connected_at",
        "finished_at",
        "duration",
    ]


class CallEventInline(ReadOnlyInline):
    model = CallEvent
    fields = ["occurred_at", "leg", "state", "received_at"]


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = [
        "started_at",
        "direction",
        "status",
        "client_number",
        "contact",
        "operator",
        "line_number",
        "wait_seconds",
        "talk_seconds",
    ]
    list_filter = ["status", "direction", "integration", "line", "operator"]
    search_fields = ["call_key", "client_number", "client_number_raw", "contact__name", "contact__company"]
    date_hierarchy = "started_at"
    list_select_related = ["contact", "operator"]
    raw_id_fields = ["contact", "initiated_by"]
    readonly_fields = [
        "integration", "call_key", "direction", "status", "client_number", "client_number_raw", "line",
        "line_number", "workplace", "operator", "started_at", "answered_at", "ended_at", "wait_seconds",
        "talk_seconds", "end_reason", "end_reason_code", "created_at", "updated_at",
    ]  # fmt: skip
    inlines = [CallLegInline, CallEventInline]


@admin.register(CallLeg)
class CallLegAdmin(admin.ModelAdmin):
    list_display = ["leg_id", "call", "direction", "is_line_leg", "workplace", "last_state", "started_at"]
    list_filter = ["direction", "is_line_leg", "last_state", "integration"]
    search_fields = ["leg_id", "tag", "caller_id", "callee_id", "caller_account", "callee_account"]
    raw_id_fields = ["call", "workplace"]
    readonly_fields = [f.name for f in CallLeg._meta.fields]


@admin.register(CallEvent)
class CallEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "leg", "state", "received_at"]
    list_filter = ["state"]
    search_fields = ["leg__leg_id", "call__call_key"]
    raw_id_fields = ["call", "leg", "notification"]
    readonly_fields = [f.name for f in CallEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
