"""The CRM's clients and their phone numbers (DESIGN.md: contacts/)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from . import phones


class ContactQuerySet(models.QuerySet["Contact"]):
    def current(self) -> ContactQuerySet:
        """Contacts that were not merged away into another one (what lists and searches show)."""
        return self.filter(merged_into__isnull=True)


class Contact(models.Model):
    """A client. A contact merged into another stays as a tombstone pointing at the survivor.

    Tombstones keep old links (call records, bookmarks) working: the detail page redirects to the
    survivor. They own no numbers (the merge moves them), so number lookups never reach them.
    """

    class Source(models.TextChoices):
        MANUAL = "manual", _("Created by hand")
        CALL = "call", _("Created from a call")

    # "name" of a person or a firm: "имя" in Russian, not the "название" of a thing (msgctxt "person").
    name = models.CharField(pgettext_lazy("person", "name"), max_length=200, blank=True, default="")
    company = models.CharField(_("company"), max_length=200, blank=True, default="")
    email = models.EmailField(_("email"), blank=True, default="")
    notes = models.TextField(_("notes"), blank=True, default="")
    personal_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("personal manager"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="managed_contacts",
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.MANUAL)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="merged_contacts",
        editable=False,
    )
    merged_at = models.DateTimeField(_("merged"), null=True, blank=True, editable=False)
    # Who typed it in (None: made from a call, or before teams existed): in team mode their team sees it.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    objects = ContactQuerySet.as_manager()

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        permissions = [
            ("merge_contact", _("Can merge contacts")),
            # The personal manager routes the client's calls (parking): not for every operator to set.
            ("change_personal_manager", _("Can change a contact's personal manager")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(merged_into=models.F("pk")), name="contact_not_merged_into_itself"
            ),
        ]

    def __str__(self) -> str:
        if self.name:
            return self.name
        if self.pk:
            # .all() so that a prefetch_related("numbers") is used; PhoneNumber is ordered by id.
            first = next(iter(self.numbers.all()), None)
            if first is not None:
                return first.display
        return str(_("Contact #%(id)s") % {"id": self.pk or "—"})

    def get_absolute_url(self) -> str:
        return reverse("contacts:detail", kwargs={"pk": self.pk})


class PhoneNumber(models.Model):
    """One number of one contact. `e164` is the lookup key; `raw` is always what was received/typed.

    A number phonenumbers cannot read is kept with an empty `e164` and found by `raw_digits`.
    """

    class Kind(models.TextChoices):
        MOBILE = "mobile", _("Mobile")
        WORK = "work", _("Work")
        OTHER = "other", _("Other")

    contact = models.ForeignKey(
        Contact, verbose_name=_("contact"), on_delete=models.CASCADE, related_name="numbers"
    )
    # Indexed by the partial unique constraint below (the lookup path of every call notification).
    e164 = models.CharField(_("E.164"), max_length=20, blank=True, default="")
    raw = models.CharField(_("number as received"), max_length=100)
    raw_digits = models.CharField(_("digits"), max_length=100, blank=True, default="", editable=False)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, blank=True, default="")
    # Typed after the number ("доб. 12", "ext. 12", "#12", ",12": contacts.phones.split_extension), kept
    # apart: the number alone is what lookups match and the PBX dials; the operator dials the extension.
    extension = models.CharField(_("extension"), max_length=10, blank=True, default="")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("phone number")
        verbose_name_plural = _("phone numbers")
        ordering = ["id"]
        constraints = [
            # One number belongs to one contact: this index is also what lookups by number use.
            models.UniqueConstraint(
                fields=["e164"],
                condition=~Q(e164=""),
                name="uniq_phonenumber_e164",
                violation_error_message=_("This number already belongs to another contact."),
            ),
            # The same rule for numbers that are not phone numbers, matched on their digits.
            models.UniqueConstraint(
                fields=["raw_digits"],
                condition=Q(e164=""),
                name="uniq_phonenumber_raw_digits",
                violation_error_message=_("This number already belongs to another contact."),
            ),
            models.CheckConstraint(condition=~Q(e164="") | ~Q(raw_digits=""), name="phonenumber_has_digits"),
        ]

    def __str__(self) -> str:
        return self.display

    @property
    def display(self) -> str:
        """The number for people: `+7 921 946-27-61` (`… доб. 12` with an extension), or as received when
        it is not a phone number."""
        number = self.number_display
        return f"{number} {gettext('ext.')} {self.extension}" if self.extension else number

    @property
    def number_display(self) -> str:
        """The number alone (what the PBX dials), for people."""
        return phones.format_for_people(self.e164) if self.e164 else self.raw

    @property
    def dial(self) -> str:
        """The number for the PBX (makeCall `calleid`)."""
        return phones.dial_format(self.e164) if self.e164 else self.raw_digits


class Team(models.Model):
    """A group of users who share their calls, contacts and recordings when visibility is "team".

    Members are the team's people (their calls are the team's calls); supervisors see the team's calls
    too without being counted as its people. A user may be in several teams, as member or supervisor.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("members"), related_name="teams", blank=True
    )
    supervisors = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("supervisors"),
        related_name="supervised_teams",
        blank=True,
        help_text=_("They see the calls, contacts and recordings of the team's members."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]
        permissions = [("view_all_teams", _("Can see the calls, contacts and recordings of every team"))]

    def __str__(self) -> str:
        return self.name


class AccessSettings(models.Model):
    """Who sees what: one row (id 1), edited in the admin. No row yet means the default (everyone)."""

    SINGLETON_ID = 1

    class Visibility(models.TextChoices):
        ALL = "all", _("Everyone sees every call, contact and recording")
        TEAM = "team", _("Operators see only their team's calls, contacts and recordings")

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    visibility = models.CharField(
        _("who sees what"),
        max_length=8,
        choices=Visibility.choices,
        default=Visibility.ALL,
        help_text=_(
            "In team mode an operator sees the calls, contacts and recordings of their teams and their own; "
            "a team's supervisors see those of the teams they supervise; administrators see everything."
        ),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("access settings")
        verbose_name_plural = _("access settings")
        constraints = [models.CheckConstraint(condition=Q(id=1), name="accesssettings_single_row")]

    def __str__(self) -> str:
        return str(_("Access settings"))
