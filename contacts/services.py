"""Writes of contacts: create, numbers, auto-create from calls, merge."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from auditlog.context import disable_auditlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ManyToOneRel
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import phones
from .models import Contact, PhoneNumber
from .selectors import contact_find_by_number, phone_number_lookup

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


_NAME_MAX = Contact._meta.get_field("name").max_length or 200


def auto_create_enabled() -> bool:
    return bool(getattr(settings, "CONTACTS_AUTO_CREATE", True))


def _number_fields(number: str) -> tuple[str, str, str]:
    """(e164, raw, raw_digits) of a number to store (an extension typed after it split off), or
    ValidationError when it cannot be one."""
    raw, _extension = phones.split_extension(number or "")
    if not raw:
        raise ValidationError(_("Enter a phone number."), code="empty")
    if phones.is_pbx_sip_id(raw):
        raise ValidationError(
            _("“%(number)s” is a PBX workplace SIP ID, not a client's number."),
            code="sip_id",
            params={"number": raw},
        )
    e164 = phones.normalize(raw) or ""
    digits = phones.digits_only(raw)
    if not e164 and not digits:
        raise ValidationError(
            _("“%(number)s” is not a phone number."), code="invalid", params={"number": raw}
        )
    max_raw = PhoneNumber._meta.get_field("raw").max_length or 100
    if len(raw) > max_raw:
        raise ValidationError(
            _("“%(number)s” is too long for a phone number."), code="too_long", params={"number": raw[:40]}
        )
    return e164, raw, digits


def _taken_error(owner: Contact, number: str) -> ValidationError:
    return ValidationError(
        _("The number %(number)s already belongs to contact “%(contact)s” (#%(id)s)."),
        code="number_taken",
        params={"number": number, "contact": str(owner), "id": owner.pk},
    )


def phone_number_check(
    *, number: str, allowed_owner: Contact | None = None, allowed_row: PhoneNumber | None = None
) -> PhoneNumber | None:
    """ValidationError when `number` cannot be stored; else the stored row it matches, if any.

    A number already stored is fine only when it belongs to `allowed_owner` (re-listing a contact's
    own numbers) or is `allowed_row` itself (the row being edited); anywhere else it is taken, and the
    error (code "number_taken") names the owner.
    """
    _, raw, _ = _number_fields(number)
    stored = _stored_number(raw)
    if stored is None:
        return None
    if (allowed_row is not None and stored.pk == allowed_row.pk) or (
        allowed_owner is not None and stored.contact_id == allowed_owner.pk
    ):
        return stored
    raise _taken_error(stored.contact, raw)


def contact_add_number(*, contact: Contact, number: str, kind: str = "") -> PhoneNumber:
    """Attach `number` (any format) to `contact`; idempotent for a number it already has.

    ValidationError (code "number_taken", naming the owner) when another contact has it.
    """
    e164, raw, digits = _number_fields(number)
    extension = phones.split_extension(number or "")[1]
    existing = phone_number_check(number=raw, allowed_owner=contact)
    if existing is not None:
        if existing.extension != extension:  # the same number, its extension changed (or dropped)
            existing.extension = extension
            existing.save(update_fields=["extension"])
        return existing
    try:
        with transaction.atomic():
            return PhoneNumber.objects.create(
                contact=contact, e164=e164, raw=raw, raw_digits=digits, kind=kind, extension=extension
            )
    except IntegrityError:
        # Someone stored the same number between our check and our insert: raises "number_taken"
        # when it went to another contact.
        existing = phone_number_check(number=raw, allowed_owner=contact)
        if existing is None:
            raise
        return existing


def _stored_number(number: str) -> PhoneNumber | None:
    lookup = phone_number_lookup(number=number)
    return next(iter(lookup[:1]), None) if lookup is not None else None


def contact_set_numbers(*, contact: Contact, numbers: Sequence[str]) -> list[PhoneNumber]:
    """Make `contact`'s numbers exactly `numbers` (any formats): keep matches, add new, drop the rest."""
    with transaction.atomic():
        kept: list[PhoneNumber] = []
        errors: list[ValidationError] = []
        for number in numbers:
            if not (number or "").strip():
                continue
            try:
                row = contact_add_number(contact=contact, number=number)
            except ValidationError as exc:
                errors.append(exc)
                continue
            if row not in kept:
                kept.append(row)
        if errors:
            raise ValidationError(errors)
        contact.numbers.exclude(pk__in=[row.pk for row in kept]).delete()
    return kept


def contact_create(
    *,
    name: str = "",
    company: str = "",
    email: str = "",
    notes: str = "",
    numbers: Sequence[str] = (),
    personal_manager: User | None = None,
    source: str = Contact.Source.MANUAL,
    created_by: User | None = None,
) -> Contact:
    """A new contact with its numbers, all or nothing (ValidationError names a taken number's owner)."""
    contact = Contact(
        name=name.strip(),
        company=company.strip(),
        email=email.strip(),
        notes=notes,
        personal_manager=personal_manager,
        source=source,
        created_by=created_by,
    )
    contact.full_clean()
    with transaction.atomic():
        contact.save()
        contact_set_numbers(contact=contact, numbers=numbers)
    logger.info("contact %s created (%s)", contact.pk, source)
    return contact


def contact_update(
    *,
    contact: Contact,
    name: str,
    company: str,
    email: str,
    notes: str,
    personal_manager: User | None,
    numbers: Sequence[str] | None = None,
) -> Contact:
    """Replace the editable fields (and, when given, the numbers) of `contact`, all or nothing."""
    contact.name = name.strip()
    contact.company = company.strip()
    contact.email = email.strip()
    contact.notes = notes
    contact.personal_manager = personal_manager
    contact.full_clean()
    with transaction.atomic():
        contact.save()
        if numbers is not None:
            contact_set_numbers(contact=contact, numbers=numbers)
    return contact


def contact_name(*, contact: Contact, name: str, company: str) -> Contact:
    """Name a contact in place (the call card's "Name this client" for a contact made from a call): only
    its name and company change, its numbers and calls stay; a name or a company is required."""
    name, company = (name or "").strip(), (company or "").strip()
    errors: dict[str, Any] = {}
    if not name and not company:
        errors["name"] = _("Enter a name or a company.")
    if len(name) > _NAME_MAX:
        errors["name"] = _("The name is too long (at most %(n)d characters).") % {"n": _NAME_MAX}
    if len(company) > _NAME_MAX:
        errors["company"] = _("The company is too long (at most %(n)d characters).") % {"n": _NAME_MAX}
    if errors:
        raise ValidationError(errors)
    contact.name, contact.company = name, company
    contact.save(update_fields=["name", "company", "updated_at"])  # a save: the audit trail records it
    return contact


def contact_get_or_create_for_number(*, number: str, name: str = "") -> tuple[Contact | None, bool]:
    """The contact behind a call's number, creating it when unknown; (contact, created).

    (None, False) for an empty number, a PBX SIP ID, or an unknown number with CONTACTS_AUTO_CREATE
    off. A contact is made only for a plausible phone number (``phones.normalize`` reads it as E.164):
    a caller id that is junk (`79000000000.0`, a JSON float; `-1`; sixty digits) is kept on the call as
    received and makes no contact; a contact a person made for a number that is no phone number (a short
    service number) is still found. An extension after the number (`… доб. 12`) is kept on the number.
    Safe under concurrency: two notifications for one new number make one contact (the unique index
    decides; the loser re-reads the winner's row).
    """
    number = (number or "").strip()
    if not number or phones.is_pbx_sip_id(number):
        return None, False
    existing = contact_find_by_number(number=number)
    if existing is not None:
        return existing, False
    if not auto_create_enabled() or phones.normalize(number) is None:
        return None, False
    try:
        e164, raw, digits = _number_fields(number)
    except ValidationError:
        return None, False
    extension = phones.split_extension(number)[1]
    try:
        # Not in the audit trail: nobody made this change, the contact says it came from a call (source,
        # created_at), and the applier's hot path skips two inserts.
        with transaction.atomic(), disable_auditlog():
            contact = Contact.objects.create(name=name.strip()[:_NAME_MAX], source=Contact.Source.CALL)
            PhoneNumber.objects.create(
                contact=contact, e164=e164, raw=raw, raw_digits=digits, extension=extension
            )
    except IntegrityError:
        # A concurrent notification for the same number won the unique index: use its contact.
        existing = contact_find_by_number(number=number)
        if existing is None:
            raise
        logger.debug("contact for a new number was created concurrently: using %s", existing.pk)
        return existing, False
    logger.info("contact %s created from a call", contact.pk)
    return contact, True


def contact_merge(*, target: Contact, source: Contact) -> Contact:
    """Fold `source` into `target`: numbers, everything else attached to it (calls, callback tasks, …),
    empty fields, notes, personal manager.

    `source` stays as a tombstone (`merged_into=target`), owning nothing; contacts merged into it
    before now point at `target`. ValidationError for a contact merged into itself or already merged.
    """
    if target.pk == source.pk:
        raise ValidationError(_("A contact cannot be merged into itself."), code="same")
    with transaction.atomic():
        # Lock both rows, in id order so that two opposite merges cannot deadlock.
        locked = {
            c.pk: c
            for c in Contact.objects.select_for_update().filter(pk__in=[target.pk, source.pk]).order_by("pk")
        }
        if len(locked) != 2:
            raise ValidationError(_("The contact no longer exists."), code="missing")
        target, source = locked[target.pk], locked[source.pk]
        for contact in (target, source):
            if contact.merged_into_id is not None:
                raise ValidationError(
                    _("Contact “%(contact)s” was already merged into another one."),
                    code="already_merged",
                    params={"contact": str(contact)},
                )
        PhoneNumber.objects.filter(contact=source).update(contact=target)
        _move_attached(target=target, source=source)
        for field in ("name", "company", "email"):
            if not getattr(target, field):
                setattr(target, field, getattr(source, field))
        if source.notes.strip():
            kept = target.notes.rstrip()
            target.notes = f"{kept}\n\n{source.notes.strip()}" if kept else source.notes.strip()
        if target.personal_manager_id is None:
            target.personal_manager_id = source.personal_manager_id
        target.save()
        Contact.objects.filter(merged_into=source).update(merged_into=target)
        source.merged_into = target
        source.merged_at = timezone.now()
        # A tombstone manages nobody's clients: `user.managed_contacts` lists live contacts only.
        source.personal_manager = None
        source.save(update_fields=["merged_into", "merged_at", "personal_manager", "updated_at"])
    logger.info("contact %s merged into %s", source.pk, target.pk)
    return target


def _move_attached(*, target: Contact, source: Contact) -> None:
    """Point every row of other models that refers to `source` at `target` (Django's model metadata lists
    them: the calls, the callback tasks, …), so no app has to tell the contacts app what it keeps."""
    for relation in Contact._meta.get_fields():
        model = relation.related_model
        if not isinstance(relation, ManyToOneRel) or not relation.auto_created or model is None:
            continue
        if model in (PhoneNumber, Contact):  # moved above; tombstones are re-pointed by the merge itself
            continue
        field_name = relation.field.name
        moved = model._default_manager.filter(**{field_name: source}).update(**{field_name: target})
        if moved:
            name = model.__name__
            logger.info("Contact %s merged into %s: %s %s row(s) moved", source.pk, target.pk, moved, name)
