"""Users and groups in the admin, with permissions named in the admin's language.

Django stores a permission's name once, in English, when the migrations create it ("Can add call",
``django.contrib.auth.management.create_permissions``), and the admin's user and group forms list that
stored text. A Russian-speaking admin deciding who may do what read English. Here the list names each
permission from what it is instead: the four kinds every model has by the action and the model's
(translated) verbose name, a model's own permissions by their ``Meta.permissions`` name through gettext.
The choices and what is saved are Django's; only the words shown change (``label_from_instance``, the
documented way to name a model choice).
"""

from __future__ import annotations

from typing import Any

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from auditlog.render import get_field_verbose_name
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models import ManyToManyField, Model
from django.forms import ModelMultipleChoiceField
from django.http import HttpRequest
from django.utils import formats
from django.utils.timezone import localtime
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

# The audit trail's summary of an entry's fields is cut at about this many characters (as auditlog's).
SUMMARY_LENGTH = 75

# The permissions Django gives every model (Meta.default_permissions), by the first word of the codename.
DEFAULT_ACTIONS = {
    "add": _("Can add %(model)s"),
    "change": _("Can change %(model)s"),
    "delete": _("Can delete %(model)s"),
    "view": _("Can view %(model)s"),
}


def permission_name(permission: Permission) -> str:
    """What ``permission`` lets one do, in the active language."""
    model = permission.content_type.model_class()
    if model is None:
        # A model no longer installed (its permission rows outlive it): what was stored.
        return permission.name
    action, _sep, model_name = permission.codename.partition("_")
    if action in DEFAULT_ACTIONS and model_name == model._meta.model_name:
        return str(DEFAULT_ACTIONS[action] % {"model": _model_name(model)})
    return _own_permission_name(model, permission)


def _model_name(model: type[Model]) -> str:
    # A library's model may name itself without gettext (channels-lite's "event"): our catalog has it.
    return gettext(str(model._meta.verbose_name))


def _own_permission_name(model: type[Model], permission: Permission) -> str:
    for codename, name in model._meta.permissions:
        if codename == permission.codename:
            # Meta.permissions names are marked for translation (gettext_lazy or gettext_noop).
            return gettext(str(name))
    return gettext(permission.name)


def permission_label(permission: Permission) -> str:
    """The app and what the permission allows, in the active language: "Звонки | Может добавлять: звонок".
    (``Permission.__str__`` also names the model between them, which the name already says, and the
    admin's narrow list cut the name off.)"""
    model = permission.content_type.model_class()
    if model is None:
        return str(permission)
    app_name = apps.get_app_config(model._meta.app_label).verbose_name
    return f"{app_name} | {permission_name(permission)}"


class PermissionChoiceField(ModelMultipleChoiceField):
    def label_from_instance(self, obj: Permission) -> str:  # type: ignore[override]
        return permission_label(obj)


class PermissionNamesMixin:
    """For the admin of a model with a many-to-many to Permission: its choices in the admin's language."""

    def formfield_for_manytomany(
        self, db_field: ManyToManyField[Any, Any], request: HttpRequest | None = None, **kwargs: Any
    ) -> ModelMultipleChoiceField[Any] | None:
        if db_field.related_model is Permission:
            kwargs["form_class"] = PermissionChoiceField
            # One query for the list: each label reads the permission's content type.
            kwargs.setdefault("queryset", Permission.objects.select_related("content_type"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]


User = get_user_model()

# An empty value reads "—" in every admin page, as on our own pages (Django's default is a hyphen).
admin.site.empty_value_display = "—"

admin.site.unregister(Group)
admin.site.unregister(User)


@admin.register(Group)
class GroupAdmin(PermissionNamesMixin, auth_admin.GroupAdmin):
    pass


@admin.register(User)
class UserAdmin(PermissionNamesMixin, auth_admin.UserAdmin):
    pass


# The audit trail's change list (django-auditlog's LogEntryAdmin) summed up each entry in English with the
# fields' code names ("4 changes: raw, e164, kind, contact") under an English header ("Correlation ID"): the
# same summary in the admin's language, the fields by their verbose names; an entry's page gave its time as
# Python prints it. The rest is auditlog's.
admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditLogEntryAdmin(LogEntryAdmin):
    @admin.display(description=_("Changes"))
    def msg_short(self, obj: LogEntry) -> str:
        if obj.action in (LogEntry.Action.DELETE, LogEntry.Action.ACCESS):
            return ""
        changes = obj.changes_dict
        fields = ", ".join(str(get_field_verbose_name(obj, name)) for name in changes)
        if len(fields) > SUMMARY_LENGTH:
            cut = fields.rfind(" ", 0, SUMMARY_LENGTH)
            fields = fields[: cut if cut > 0 else SUMMARY_LENGTH] + " …"
        return ngettext("%(count)d change: %(fields)s", "%(count)d changes: %(fields)s", len(changes)) % {
            "count": len(changes),
            "fields": fields,
        }

    @admin.display(description=_("Created"), ordering="timestamp")
    def created(self, obj: LogEntry) -> str:
        # auditlog returns the datetime itself: the change list formats it, but a read-only field of a
        # change form is printed with str() ("2026-12-04 19:54:00.185291+03:00").
        return formats.localize(localtime(obj.timestamp))

    @admin.display(description=_("Correlation ID"))
    def cid_url(self, obj: LogEntry) -> Any:
        return super().cid_url(obj)
