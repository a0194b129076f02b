from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from contacts.access import users_visible_to

from .admin_dates import DateRangeAdmin
from .admin_people import PeopleByNameMixin
from .admin_words import words_column, words_filter
from .models import Call, CallEvent, CallLeg, Recording, RecordingAccess
from .recordings.services import recordings_requeue
from .tasks import download_recording
from .visibility import callbacks_visible_to, calls_visible_to, tasks_visible_to
from .words import dial_code_words, end_reason_words, leg_state_words


def _in_place(fields: list[str], name: str, shown: str) -> list[str]:
    """``fields`` with ``shown`` (the method showing the field in words) where ``name`` was."""
    return [shown if f == name else f for f in fields]


def _of_visible_calls(request: HttpRequest, queryset: QuerySet[Any], call_path: str) -> QuerySet[Any]:
    """Rows of calls the admin user may see (team mode; superusers see everything)."""
    if users_visible_to(request.user) is None:
        return queryset
    return queryset.filter(**{f"{call_path}__in": calls_visible_to(request.user).values("pk")})


class ReadOnlyInline(admin.TabularInline):
    class Media:
        # A wide inline scrolls in its box, not the whole page (the file says why).
        css = {"all": ["css/admin_inlines.css"]}

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
        "leg_state",
        "started_at",
        "connected_at",
        "finished_at",
        "duration",
    ]
    readonly_fields = ["leg_state"]
    leg_state = words_column(CallLeg, "last_state", leg_state_words)  # MTT's state in words


class CallEventInline(ReadOnlyInline):
    model = CallEvent
    fields = ["occurred_at", "leg", "event_state", "received_at"]
    readonly_fields = ["event_state"]
    event_state = words_column(CallEvent, "state", leg_state_words)  # MTT's state in words


@admin.register(Call)
class CallAdmin(DateRangeAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # calls come from the PBX

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
        "result",
    ]
    list_filter = ["status", "direction", "result", "integration", "line", "operator"]
    search_fields = ["call_key", "client_number", "client_number_raw", "contact__name", "contact__company"]
    date_hierarchy = "started_at"
    list_select_related = ["contact", "operator", "result"]
    raw_id_fields = ["contact", "initiated_by", "wrapped_up_by"]
    readonly_fields = [
        "integration", "call_key", "direction", "status", "client_number", "client_number_raw", "line",
        "line_number", "workplace", "operator", "started_at", "answered_at", "ended_at", "wait_seconds",
        "talk_seconds", "end_reason_in_words", "end_reason_code", "wrapped_up_at", "created_at", "updated_at",
    ]  # fmt: skip
    exclude = ["end_reason"]  # MTT's free text: shown in words (the raw text stays in the legs' bodies)
    inlines = [CallLegInline, CallEventInline]

    @admin.display(description=_("End reason"))
    def end_reason_in_words(self, call: Call) -> str:
        return end_reason_words(call.end_reason, call.end_reason_code) or "—"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return _of_visible_calls(request, super().get_queryset(request), "pk")


_LEG_FIELDS = [f.name for f in CallLeg._meta.fields if f.name != "field_ranks"]


@admin.register(CallLeg)
class CallLegAdmin(DateRangeAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    list_display = ["leg_id", "call", "direction", "is_line_leg", "workplace", "leg_state", "started_at"]
    list_filter = [
        "direction",
        "is_line_leg",
        words_filter(CallLeg, "last_state", leg_state_words),
        "integration",
    ]
    search_fields = ["leg_id", "tag", "caller_id", "callee_id", "caller_account", "callee_account"]
    raw_id_fields = ["call", "workplace"]
    # Every field read-only, MTT's values in words; the field ranks are the merge's bookkeeping (which
    # notification a value came from), nothing an admin reads.
    readonly_fields = _in_place(
        _in_place(_in_place(_LEG_FIELDS, "last_state", "leg_state"), "states", "states_in_words"),
        "reason",
        "reason_in_words",
    )
    exclude = ["last_state", "states", "reason"]  # shown in words, read-only
    leg_state = words_column(CallLeg, "last_state", leg_state_words)  # MTT's state in words

    @admin.display(description=_("states seen"))
    def states_in_words(self, leg: CallLeg) -> str:
        return ", ".join(leg_state_words(state) for state in leg.states or []) or "—"

    @admin.display(description=_("reason"))
    def reason_in_words(self, leg: CallLeg) -> str:
        return end_reason_words(leg.reason, leg.reason_code) or "—"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return _of_visible_calls(request, super().get_queryset(request), "call")


@admin.register(CallEvent)
class CallEventAdmin(DateRangeAdmin):
    list_display = ["occurred_at", "leg", "event_state", "received_at"]
    list_filter = [words_filter(CallEvent, "state", leg_state_words)]
    search_fields = ["leg__leg_id", "call__call_key"]
    raw_id_fields = ["call", "leg", "notification"]
    readonly_fields = _in_place([f.name for f in CallEvent._meta.fields], "state", "event_state")
    exclude = ["state"]  # shown in words, read-only
    event_state = words_column(CallEvent, "state", leg_state_words)  # MTT's state in words

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return _of_visible_calls(request, super().get_queryset(request), "call")


# --- Recordings -----------------------------------------------------------------------------------


class RecordingAccessInline(PeopleByNameMixin, ReadOnlyInline):
    model = RecordingAccess
    fields = ["at", "user", "action", "ip"]
    readonly_fields = ["at", "user", "action", "ip"]
    show_change_link = False


@admin.register(Recording)
class RecordingAdmin(DateRangeAdmin):
    list_display = [
        "created_at",
        "call_link",
        "status",
        "expiring_soon",
        "mtt_expires_at",
        "size",
        "duration_seconds",
        "attempts",
        "stored_at",
    ]
    list_filter = ["status", "expiring_soon", "integration"]
    search_fields = ["leg_call_id", "call__call_key", "source_url", "sha256"]
    date_hierarchy = "created_at"
    list_select_related = ["call"]
    readonly_fields = [*(f.name for f in Recording._meta.fields), "player"]
    actions = ["download_again"]
    inlines = [RecordingAccessInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # recordings come from the PBX

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # files go by retention (RECORDINGS_KEEP_DAYS); the rows are the audit trail

    def has_download_again_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("calls.change_recording")

    @admin.display(description=_("call"), ordering="call__started_at")
    def call_link(self, obj: Recording) -> str:
        if obj.call_id is None:
            return obj.leg_call_id
        url = reverse("admin:calls_call_change", args=[obj.call_id])
        return format_html('<a href="{}">{}</a>', url, obj.call)

    @admin.display(description=_("player"))
    def player(self, obj: Recording) -> str:
        if not obj.is_stored:
            return "—"
        return format_html(
            '<audio controls preload="none" src="{}"></audio> <a href="{}?download=1">{}</a>',
            obj.get_absolute_url(),
            obj.get_absolute_url(),
            _("Download"),
        )

    @admin.action(description=_("Download again from MTT"), permissions=["download_again"])
    def download_again(self, request: HttpRequest, queryset: QuerySet[Recording]) -> None:
        ids = recordings_requeue(recording_ids=list(queryset.values_list("pk", flat=True)))
        for pk in ids:
            download_recording.delay(pk)
        skipped = queryset.count() - len(ids)
        self.message_user(
            request,
            _("%(queued)s recording(s) queued for download; %(skipped)s skipped (stored or downloading).")
            % {"queued": len(ids), "skipped": skipped},
            messages.SUCCESS if ids else messages.WARNING,
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return _of_visible_calls(request, super().get_queryset(request), "call")


@admin.register(RecordingAccess)
class RecordingAccessAdmin(DateRangeAdmin):
    list_display = ["at", "user", "action", "recording", "ip"]
    list_filter = ["action", "at"]
    search_fields = ["user__username", "recording__leg_call_id", "recording__call__call_key", "ip"]
    date_hierarchy = "at"
    list_select_related = ["user", "recording"]
    readonly_fields = ["recording", "user", "action", "at", "ip"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return _of_visible_calls(request, super().get_queryset(request), "recording__call")


# --- Click-to-call, routing decisions, callback queue -------------------------------------------------

from .models import CallbackTask, DialRequest, RoutingDecision  # noqa: E402


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(DateRangeAdmin):
    list_display = ["decided_at", "call", "decision", "reason", "manager_name", "decision_ms", "latency_ms"]
    list_filter = ["decision", "reason", "decided_at"]
    search_fields = ["call__call_key", "leg__leg_id", "manager_name", "target_sip_id", "call__client_number"]
    date_hierarchy = "decided_at"
    list_select_related = ["call"]
    readonly_fields = [*(f.name for f in RoutingDecision._meta.fields), "summary"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return _of_visible_calls(request, super().get_queryset(request), "call")


@admin.register(CallbackTask)
class CallbackTaskAdmin(DateRangeAdmin):
    list_display = [
        "client_number",
        "contact",
        "assignee",
        "missed_count",
        "last_missed_at",
        "closed_at",
        "closed_by",
    ]
    list_filter = [("closed_at", admin.EmptyFieldListFilter), "assignee", "last_missed_at"]
    search_fields = ["client_number", "contact__name", "contact__company"]
    list_select_related = ["contact", "assignee", "closed_by"]
    raw_id_fields = ["contact", "assignee", "missed_calls", "closed_by", "closed_call"]
    readonly_fields = [
        "client_number",
        "missed_count",
        "first_missed_at",
        "last_missed_at",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # missed calls make them

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return callbacks_visible_to(request.user, super().get_queryset(request))


@admin.register(DialRequest)
class DialRequestAdmin(DateRangeAdmin):
    list_display = ["created_at", "user", "number", "dialled", "status", "dial_code", "call"]
    list_filter = ["status", words_filter(DialRequest, "code", dial_code_words), "created_at"]
    search_fields = ["number", "dialled", "user__username", "mtt_call_id"]
    date_hierarchy = "created_at"
    list_select_related = ["user", "call"]
    readonly_fields = _in_place([f.name for f in DialRequest._meta.fields], "code", "dial_code")
    exclude = ["code"]  # shown in words, read-only
    dial_code = words_column(DialRequest, "code", dial_code_words)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # Team mode: who dialled which client is the dialling user's team's (numbers of their clients).
        queryset = super().get_queryset(request)
        people = users_visible_to(request.user)
        return queryset if people is None else queryset.filter(user_id__in=people)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Wrap-up: the results list, follow-up tasks --------------------------------------------------------

from .models import CallResult, FollowUpTask  # noqa: E402


@admin.register(CallResult)
class CallResultAdmin(DateRangeAdmin):
    list_display = ["name", "position", "is_active"]
    list_editable = ["position", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]


@admin.register(FollowUpTask)
class FollowUpTaskAdmin(DateRangeAdmin):
    list_display = ["due_at", "assignee", "contact", "note", "created_by", "done_at"]
    list_filter = [("done_at", admin.EmptyFieldListFilter), "assignee", "due_at"]
    search_fields = ["note", "contact__name", "contact__company", "call__client_number"]
    date_hierarchy = "due_at"
    list_select_related = ["assignee", "contact", "created_by"]
    raw_id_fields = ["call", "contact", "assignee", "created_by", "done_by"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return tasks_visible_to(request.user, super().get_queryset(request))
