from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from calls.visibility import contact_visible_to, contacts_visible_to

from . import phones
from .access import user_can_change_personal_manager, users_visible_to
from .models import Contact, PhoneNumber
from .people import PersonChoiceField
from .services import phone_number_check

# Numbers one contact may have, as the API's list allows: each is checked against the database, so a pasted
# column of thousands took a request of tens of seconds and made a contact nobody can read.
MAX_NUMBERS = 50

# One number per line (tabs, commas and semicolons too: a tab comes between the cells of a row pasted from
# a spreadsheet). A comma followed by a short group of digits is an extension ("8 800 555-35-35,12"), not a
# second number; so is one followed by an extension written out ("+7 921 946 27 77, доб 5", ", ext. 5",
# ", #5"). A semicolon before a parameter of a tel:/sip: URI (";ext=5", ";user=phone") is part of the
# number; any other starts the next one — read as one number, all after it was dropped unseen
# ("8 921 946-27-61; 8 921 946-27-62" kept only the first).
_LINE_SPLIT = re.compile(
    rf"[\r\n\t]+|,(?!\s*(?:(?:#|{phones.EXTENSION_WORD}\.?)\s*)?\d{{1,8}}\s*(?:$|[\r\n\t,;]))"
    r"|;(?!\s*[a-z][a-z0-9-]*=)",
    re.IGNORECASE,
)


class ContactForm(forms.ModelForm):
    numbers = forms.CharField(
        label=_("Phone numbers"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "+7 921 946-27-61"}),
        help_text=_(
            "One per line, in any format: +7 921 946-27-61, 8 (921) 946-27-61, 00 7 921 946 27 61; an "
            "extension after the number: “доб. 12”, “ext. 12”, “#12”."
        ),
    )
    personal_manager = PersonChoiceField(
        label=_("Personal manager"),
        queryset=get_user_model().objects.none(),
        required=False,
        help_text=_("Calls from this client go straight to this manager."),
    )

    field_order = ["name", "company", "numbers", "email", "personal_manager", "notes"]

    class Meta:
        model = Contact
        fields = ["name", "company", "email", "personal_manager", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Who fills the form in (None: no restriction, e.g. the shell): what they may set and see.
        self.user = user
        user_model = get_user_model()
        field = self.fields["personal_manager"]
        assert isinstance(field, forms.ModelChoiceField)
        if user is not None and not user_can_change_personal_manager(user):
            # The manager routes the client's calls: shown, locked, and a forged POST is ignored (a
            # disabled field always takes its initial value).
            field.disabled = True
            field.help_text = _("Only supervisors may change the personal manager.")
        choices = Q(is_active=True)
        visible = users_visible_to(user) if user is not None else None
        if visible is not None:
            # Team mode: the people this user sees (as for a follow-up's assignee), never another team's.
            choices &= Q(pk__in=visible)
        current = getattr(self.instance, "personal_manager_id", None)
        if current is not None:
            # A manager deactivated since stays selectable on the contacts they still have.
            choices |= Q(pk=current)
        field.queryset = user_model._default_manager.filter(choices).order_by(
            "first_name", "last_name", user_model.USERNAME_FIELD
        )
        if self.instance.pk and "numbers" not in self.initial:
            # Formatted for people; re-submitted unchanged they match the stored rows, which are kept.
            self.initial["numbers"] = "\n".join(n.display for n in self.instance.numbers.all())

    def clean_numbers(self) -> list[str]:
        value: str = self.cleaned_data.get("numbers") or ""
        numbers: list[str] = []
        keys: dict[str, str] = {}  # each number's key → its extension
        errors: list[ValidationError] = []
        instance = self.instance if self.instance.pk else None
        lines = [number for number in (line.strip() for line in _LINE_SPLIT.split(value)) if number]
        if len(lines) > MAX_NUMBERS:
            raise ValidationError(
                _("A contact has at most %(max)d numbers; %(count)d were entered.")
                % {"max": MAX_NUMBERS, "count": len(lines)},
                code="too_many",
            )
        for number in lines:
            bare = phones.split_extension(number)[0]
            # What a person types must be dialable, refused in words before anything is saved. The PBX's
            # own numbers are stored as they come: one the contact has already is kept as it is.
            problem = phones.dial_problem(bare)
            if phones.split_extension(bare)[1]:
                # "… доб. 12 доб. 13": the last was stored, the other dropped.
                problem = _("“%(number)s” has two extensions: keep one.") % {"number": phones.shown(number)}
            if problem is not None and not self._has_already(bare):
                errors.append(ValidationError(problem, code="not_dialable"))
                continue
            try:
                phone_number_check(number=number, allowed_owner=instance)
            except ValidationError as error:
                errors.append(self._hide_invisible_owner(error, number))
                continue
            key = phones.normalize(bare) or phones.digits_only(bare)
            extension = phones.split_extension(number)[1]
            if key not in keys:  # the same number typed twice in two formats
                keys[key] = extension
                numbers.append(number)
            elif keys[key] != extension:
                # "… доб. 5" and "… доб. 6": one number has one extension; the second was dropped unseen.
                errors.append(
                    ValidationError(
                        _("The number %(number)s is entered twice with different extensions: keep one.")
                        % {"number": phones.for_people(bare)},
                        code="two_extensions",
                    )
                )
        if errors:
            raise ValidationError(errors)
        return numbers

    def _has_already(self, number: str) -> bool:
        if not self.instance.pk:
            return False
        key = phones.digits_only(number)
        return bool(key) and any(n.raw_digits == key for n in self.instance.numbers.all())

    def _hide_invisible_owner(self, error: ValidationError, number: str) -> ValidationError:
        """A taken number names its contact only to users who may see that contact (team mode)."""
        owner_id = (error.params or {}).get("id") if error.code == "number_taken" else None
        if self.user is None or owner_id is None:
            return error
        owner = Contact.objects.filter(pk=owner_id).first()
        if owner is None or contact_visible_to(self.user, owner):
            return error
        return ValidationError(
            _("The number %(number)s already belongs to a contact of another team."),
            code="number_taken",
            params={"number": number},
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        empty = not (cleaned.get("name") or cleaned.get("company") or cleaned.get("numbers"))
        if empty and not self.has_error("numbers"):
            raise ValidationError(_("Enter a name, a company or a phone number."), code="empty")
        return cleaned


class MergeForm(forms.Form):
    source = forms.ModelChoiceField(queryset=Contact.objects.current(), widget=forms.HiddenInput)

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only contacts the user may see can be merged (either side); others do not exist for them.
        self.contacts: QuerySet[Contact] = Contact.objects.current()
        if user is not None:
            self.contacts = contacts_visible_to(user, self.contacts)
        source = self.fields["source"]
        assert isinstance(source, forms.ModelChoiceField)
        source.queryset = self.contacts

    target = forms.IntegerField(
        label=_("Merge into contact #"),
        min_value=1,
        help_text=_(
            "The number (#) of the contact that stays; this one's numbers, calls and notes move there."
        ),
    )

    def clean_target(self) -> Contact:
        pk = self.cleaned_data["target"]
        try:
            return self.contacts.get(pk=pk)
        except Contact.DoesNotExist:
            raise ValidationError(
                _("There is no contact #%(id)s."), params={"id": pk}, code="missing"
            ) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        source, target = cleaned.get("source"), cleaned.get("target")
        if source is not None and target is not None and source.pk == target.pk:
            raise ValidationError(_("A contact cannot be merged into itself."), code="same")
        return cleaned


class PhoneNumberAdminForm(forms.ModelForm):
    """Admin: the number is typed as `raw`, an extension after it as the contact form takes it (`… доб. 12`);
    e164, raw_digits and the extension follow from it, as the contact form stores them. A number typed or
    changed here must be dialable, refused in the same words as on the contact form; one stored as it came
    from the PBX (a short internal number) and left as it is stays."""

    class Meta:
        model = PhoneNumber
        fields = ["raw", "kind"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.extension:
            # Shown with its extension, so that saving the page unchanged keeps it.
            self.initial["raw"] = f"{self.instance.raw} {gettext('ext.')} {self.instance.extension}"

    def clean_raw(self) -> str:
        typed: str = (self.cleaned_data.get("raw") or "").strip()
        raw, extension = phones.split_extension(typed)
        unchanged = bool(self.instance.pk) and typed == str(self.initial.get("raw") or "").strip()
        if not unchanged:
            problem = phones.dial_problem(raw)
            if problem is None and phones.split_extension(raw)[1]:
                problem = _("“%(number)s” has two extensions: keep one.") % {"number": phones.shown(typed)}
            if problem is not None:
                raise ValidationError(problem, code="not_dialable")
        phone_number_check(number=raw, allowed_row=self.instance if self.instance.pk else None)
        self.instance.e164 = phones.normalize(raw) or ""
        self.instance.raw_digits = phones.digits_only(raw)
        self.instance.extension = extension
        return raw


class PhoneNumberInlineFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        seen: set[str] = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE"):
                continue
            key = form.instance.e164 or form.instance.raw_digits
            if key and key in seen:
                raise ValidationError(_("The same number is listed twice."), code="duplicate")
            seen.add(key)
