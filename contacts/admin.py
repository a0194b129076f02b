from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from calls.admin_dates import DateRangeAdmin
from calls.visibility import contacts_visible_to
from mttcrm.audit import AuditTrailAdminMixin

from .access import user_can_change_personal_manager, users_visible_to
from .forms import PhoneNumberAdminForm, PhoneNumberInlineFormSet
from .models import AccessSettings, Contact, PhoneNumber, Team
from .people import person_name
from .selectors import contact_search, number_q, number_query, user_can_merge_contacts
from .services import contact_merge


class PhoneNumberInline(admin.TabularInline):
    class Media:
        # A wide inline scrolls in its box, not the whole page (the file says why).
        css = {"all": ["css/admin_inlines.css"]}

    model = PhoneNumber
    form = PhoneNumberAdminForm
    formset = PhoneNumberInlineFormSet
    fields = ["raw", "e164", "kind", "created_at"]
    readonly_fields = ["e164", "created_at"]
    extra = 1


@admin.register(Contact)
class ContactAdmin(AuditTrailAdminMixin, DateRangeAdmin):
    # A "View" link per row to that row's audit trail (django-auditlog).
    show_auditlog_history_link = True
    list_display = [
        "__str__",
        "company",
        "numbers_display",
        "personal_manager",
        "source",
        "created_at",
        "merged_into",
    ]
    list_filter = ["personal_manager", "source", "created_at", ("merged_into", admin.EmptyFieldListFilter)]
    search_fields = ["name", "company", "email", "numbers__e164", "numbers__raw"]
    list_select_related = ["personal_manager", "merged_into"]
    readonly_fields = ["call_numbers", "created_at", "created_by", "updated_at", "merged_into", "merged_at"]
    raw_id_fields = ["personal_manager"]
    ordering = ["-id"]
    inlines = [PhoneNumberInline]
    actions = ["merge_into_oldest"]
    fieldsets = [
        (
            None,
            {"fields": ["name", "company", "email", "call_numbers", "personal_manager", "notes", "source"]},
        ),
        (_("History"), {"fields": ["created_at", "created_by", "updated_at", "merged_into", "merged_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Contact]:
        # Team mode: an admin user who is not a superuser sees their teams' contacts only.
        return contacts_visible_to(request.user, super().get_queryset(request).prefetch_related("numbers"))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if not user_can_change_personal_manager(request.user):
            fields.append("personal_manager")  # it routes the client's calls: a permission of its own
        return self.people_read_only(fields)

    def save_model(self, request: HttpRequest, obj: Contact, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Contact], search_term: str
    ) -> tuple[QuerySet[Contact], bool]:
        queryset_found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if number_query(search_term) is not None:
            # Any number format (89219462761, 0079219462761, …@pstn, … доб. 12) finds the stored +7… number.
            by_number = contact_search(query=search_term).values("pk")
            queryset_found = queryset_found | queryset.filter(pk__in=by_number)
        return queryset_found, may_have_duplicates

    @admin.display(description=_("call"))
    def call_numbers(self, obj: Contact) -> str:
        """The contact's numbers as click-to-call buttons (change_form.html loads click_to_call.js)."""
        numbers = list(obj.numbers.all()) if obj.pk else []
        if not numbers:
            return "—"
        return format_html_join(
            " · ",
            '<span class="phone" data-e164="{}" data-dial="{}">{}</span>',
            ((n.e164, n.dial, n.display) for n in numbers),
        )

    @admin.display(description=_("phone numbers"))
    def numbers_display(self, obj: Contact) -> str:
        return ", ".join(number.display for number in obj.numbers.all())

    def has_merge_permission(self, request: HttpRequest) -> bool:
        return user_can_merge_contacts(request.user) and self.has_change_permission(request)

    @admin.action(description=_("Merge the selected contacts into the oldest one"), permissions=["merge"])
    def merge_into_oldest(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        contacts = list(queryset.filter(merged_into__isnull=True).order_by("created_at", "pk"))
        if len(contacts) < 2:
            self.message_user(
                request, _("Select at least two contacts that were not merged yet."), messages.WARNING
            )
            return
        target, *sources = contacts
        try:
            for source in sources:
                contact_merge(target=target, source=source)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return
        self.message_user(
            request,
            ngettext(
                "%(count)d contact was merged into “%(target)s”.",
                "%(count)d contacts were merged into “%(target)s”.",
                len(sources),
            )
            % {"count": len(sources), "target": str(target)},
            messages.SUCCESS,
        )


@admin.register(PhoneNumber)
class PhoneNumberAdmin(DateRangeAdmin):
    form = PhoneNumberAdminForm
    list_display = ["__str__", "e164", "raw", "kind", "contact", "created_at"]
    list_filter = ["kind", "created_at"]
    search_fields = ["e164", "raw", "raw_digits", "contact__name", "contact__company"]
    list_select_related = ["contact"]
    raw_id_fields = ["contact"]
    readonly_fields = ["e164", "raw_digits", "created_at"]
    fields = ["contact", "raw", "e164", "raw_digits", "kind", "created_at"]
    ordering = ["-id"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[PhoneNumber], search_term: str
    ) -> tuple[QuerySet[PhoneNumber], bool]:
        queryset_found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        number = number_query(search_term)
        if number is not None:
            # As the contacts' search reads it: `8 (921) 946-27-61` was searched word by word ("8", "(921)",
            # "946-27-61") in the stored "+79219462761" and found nothing.
            matching = number_q(number, e164_field="e164", digits_fields=("raw_digits",))
            queryset_found = queryset_found | queryset.filter(matching)
        return queryset_found, may_have_duplicates

    def get_queryset(self, request: HttpRequest) -> QuerySet[PhoneNumber]:
        # Team mode: a number is its contact's (another team's client's numbers, and name, stay hidden).
        queryset = super().get_queryset(request)
        if users_visible_to(request.user) is None:
            return queryset
        return queryset.filter(contact__in=contacts_visible_to(request.user).values("pk"))


@admin.register(Team)
class TeamAdmin(AuditTrailAdminMixin, DateRangeAdmin):
    # A "View" link per row to that row's audit trail (django-auditlog).
    show_auditlog_history_link = True
    list_display = ["name", "member_names", "supervisor_names"]
    search_fields = ["name", "members__username", "members__last_name", "supervisors__username"]
    filter_horizontal = ["members", "supervisors"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return super().get_queryset(request).prefetch_related("members", "supervisors")

    @admin.display(description=_("members"))
    def member_names(self, obj: Team) -> str:
        return ", ".join(person_name(u) for u in obj.members.all())

    @admin.display(description=_("supervisors"))
    def supervisor_names(self, obj: Team) -> str:
        return ", ".join(person_name(u) for u in obj.supervisors.all())


@admin.register(AccessSettings)
class AccessSettingsAdmin(admin.ModelAdmin):
    """One row: the list goes straight to its page (to the add page while there is none: the default)."""

    fields = ["visibility", "updated_at"]
    readonly_fields = ["updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        exists = AccessSettings.objects.filter(pk=AccessSettings.SINGLETON_ID).exists()
        return not exists and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)  # Django's own refusal
        if AccessSettings.objects.filter(pk=AccessSettings.SINGLETON_ID).exists():
            url = reverse("admin:contacts_accesssettings_change", args=[AccessSettings.SINGLETON_ID])
        else:
            url = reverse("admin:contacts_accesssettings_add")
        return HttpResponseRedirect(url)
