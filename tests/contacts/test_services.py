from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from calls.models import Call, CallbackTask
from contacts.models import Contact, PhoneNumber
from contacts.selectors import contact_find_by_number
from contacts.services import (
    contact_add_number,
    contact_create,
    contact_get_or_create_for_number,
    contact_merge,
    contact_set_numbers,
    contact_update,
)
from tests.concurrency import at_once

pytestmark = pytest.mark.django_db


def test_create_stores_e164_raw_and_digits() -> None:
    contact = contact_create(name="Анна", numbers=["8 (921) 946-27-61", "", "9219462761"])
    number = contact.numbers.get()  # the same number twice in two formats is stored once
    assert (number.e164, number.raw, number.raw_digits) == (
        "+79219462761",
        "8 (921) 946-27-61",
        "89219462761",
    )
    assert contact.source == Contact.Source.MANUAL
    assert str(contact) == "Анна"


def test_str_without_a_name_is_the_first_number_formatted() -> None:
    contact = contact_create(numbers=["79219462761", "78124241500"])
    assert str(contact) == "+7 921 946-27-61"
    nameless = contact_create(company="ООО")
    with translation.override("en"):
        assert str(nameless) == f"Contact #{nameless.pk}"


def test_create_is_all_or_nothing() -> None:
    contact_create(name="Владелец", numbers=["+79219462761"])
    with pytest.raises(ValidationError):
        contact_create(name="Второй", numbers=["+74951234567", "89219462761"])
    assert not Contact.objects.filter(name="Второй").exists()
    assert contact_find_by_number(number="+74951234567") is None


def test_create_validates_email() -> None:
    with pytest.raises(ValidationError) as exc:
        contact_create(name="X", email="not-an-email")
    assert "email" in exc.value.message_dict


def test_duplicate_number_error_names_the_owner() -> None:
    owner = contact_create(name="Пётр Сидоров", numbers=["+79219462761"])
    other = contact_create(name="Другой")
    with pytest.raises(ValidationError) as exc:
        contact_add_number(contact=other, number="89219462761")
    assert exc.value.code == "number_taken"
    with translation.override("en"):
        message = exc.value.messages[0]
    assert "Пётр Сидоров" in message
    assert f"#{owner.pk}" in message
    assert other.numbers.count() == 0


def test_add_number_is_idempotent_for_the_owner() -> None:
    contact = contact_create(name="A", numbers=["+79219462761"])
    again = contact_add_number(contact=contact, number="0079219462761")
    assert again.raw == "+79219462761"
    assert contact.numbers.count() == 1


@pytest.mark.parametrize(
    ("number", "code"), [("883140582526566", "sip_id"), ("abc", "invalid"), ("", "empty")]
)
def test_add_number_refuses_what_is_not_a_client_number(number: str, code: str) -> None:
    contact = contact_create(name="A")
    with pytest.raises(ValidationError) as exc:
        contact_add_number(contact=contact, number=number)
    assert exc.value.code == code


def test_unparseable_number_is_unique_too() -> None:
    contact_create(name="A", numbers=["12-34"])
    with pytest.raises(ValidationError):
        contact_create(name="B", numbers=["1234"])


def test_set_numbers_keeps_adds_and_drops() -> None:
    contact = contact_create(name="A", numbers=["+79219462761", "+78124241500"])
    kept = contact.numbers.get(e164="+79219462761")
    contact_set_numbers(contact=contact, numbers=["89219462761", "+74951234567"])
    assert set(contact.numbers.values_list("e164", flat=True)) == {"+79219462761", "+74951234567"}
    assert contact.numbers.get(e164="+79219462761").pk == kept.pk  # kept, not re-created


def test_update_replaces_fields(operator_user: Any) -> None:
    contact = contact_create(name="A", notes="old")
    contact_update(
        contact=contact,
        name=" B ",
        company="C",
        email="b@example.com",
        notes="new",
        personal_manager=operator_user,
        numbers=["+79219462761"],
    )
    contact.refresh_from_db()
    assert (contact.name, contact.company, contact.email, contact.notes) == ("B", "C", "b@example.com", "new")
    assert contact.personal_manager == operator_user
    assert contact.numbers.count() == 1


# --- auto-create from calls --------------------------------------------------------------------


def test_get_or_create_creates_once_then_finds() -> None:
    contact, created = contact_get_or_create_for_number(number="89219462761", name="Звонящий")
    assert created and contact is not None
    assert contact.source == Contact.Source.CALL
    assert contact.name == "Звонящий"
    assert contact.numbers.get().e164 == "+79219462761"
    again, created_again = contact_get_or_create_for_number(number="79219462761@pstn")
    assert (again, created_again) == (contact, False)


@pytest.mark.parametrize("number", ["12345", "79000000000.0", "7.9e+10", "-1", "7" * 60, "doh", "+7 921 946"])
def test_get_or_create_makes_no_contact_for_what_is_no_phone_number(number: str) -> None:
    """Only a plausible phone number (E.164 of a possible length) makes a contact by itself: a caller id
    that is junk made one (`79000000000.0`, digits `1`, sixty 7s)."""
    assert contact_get_or_create_for_number(number=number) == (None, False)
    assert Contact.objects.count() == 0


def test_get_or_create_still_finds_a_contact_made_for_a_number_that_is_no_phone_number() -> None:
    contact = contact_create(name="Служба", numbers=["12345"])
    assert contact_get_or_create_for_number(number="12345") == (contact, False)


def test_get_or_create_keeps_the_extension_and_reads_any_digits() -> None:
    contact, created = contact_get_or_create_for_number(number="+7 921 946 00 09 доб. 12")
    assert created and contact is not None
    assert (contact.numbers.get().e164, contact.numbers.get().extension) == ("+79219460009", "12")
    assert contact_get_or_create_for_number(number="＋７９２１９４６００09") == (contact, False)


@pytest.mark.parametrize("number", ["", "   ", "anonymous", "883140582526566", "sip:883140582526566@pbx"])
def test_get_or_create_ignores_empty_and_sip_ids(number: str) -> None:
    assert contact_get_or_create_for_number(number=number) == (None, False)
    assert Contact.objects.count() == 0


def test_auto_create_off(settings: Any) -> None:
    existing = contact_create(name="Known", numbers=["+78124241500"])
    settings.CONTACTS_AUTO_CREATE = False
    assert contact_get_or_create_for_number(number="+79219462761") == (None, False)
    assert Contact.objects.count() == 1
    # Known numbers are still found.
    assert contact_get_or_create_for_number(number="88124241500") == (existing, False)


@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_notifications_make_one_contact(postgres_only: Any) -> None:
    formats = ["+79219462761", "79219462761", "89219462761", "0079219462761", "79219462761@pstn"]
    numbers = [formats[i % len(formats)] for i in range(10)]
    answers = at_once(
        [lambda number=number: contact_get_or_create_for_number(number=number) for number in numbers]
    )
    results = [(contact.pk if contact else None, created) for contact, created in answers]
    assert Contact.objects.count() == 1
    assert PhoneNumber.objects.count() == 1
    assert {pk for pk, _ in results} == {Contact.objects.get().pk}
    assert sum(created for _, created in results) == 1


# --- merge -------------------------------------------------------------------------------------


def test_merge_moves_numbers_fills_fields_and_leaves_a_tombstone(operator_user: Any, admin_user: Any) -> None:
    target = contact_create(name="Иван", notes="первый", numbers=["+79219462761"])
    source = contact_create(
        company="Ромашка",
        email="i@example.com",
        notes="второй",
        numbers=["+78124241500", "12345"],
        personal_manager=operator_user,
    )
    older = contact_create(name="Совсем старый")
    contact_merge(target=source, source=older)  # `older` now points at `source`...

    result = contact_merge(target=target, source=source)

    assert result == target
    target.refresh_from_db()
    source.refresh_from_db()
    assert set(target.numbers.values_list("raw", flat=True)) == {"+79219462761", "+78124241500", "12345"}
    assert (target.name, target.company, target.email) == ("Иван", "Ромашка", "i@example.com")
    assert target.notes == "первый\n\nвторой"
    assert target.personal_manager == operator_user
    assert source.merged_into == target and source.merged_at is not None
    assert source.numbers.count() == 0
    assert source.personal_manager is None
    assert Contact.objects.get(pk=older.pk).merged_into == target  # ...and now at the survivor
    for number in ["88124241500", "12345"]:
        assert contact_find_by_number(number=number) == target


def test_merge_keeps_the_targets_personal_manager(operator_user: Any, admin_user: Any) -> None:
    target = contact_create(name="T", personal_manager=admin_user)
    source = contact_create(name="S", personal_manager=operator_user)
    contact_merge(target=target, source=source)
    target.refresh_from_db()
    assert target.personal_manager == admin_user
    assert target.name == "T"


def test_merge_moves_the_calls_and_callback_tasks_of_the_merged_contact(integration: Any) -> None:
    """Whatever other apps attach to a contact follows it into the survivor (no app has to register)."""
    target = contact_create(name="T", numbers=["+78124241500"])
    source = contact_create(name="S", numbers=["+79219462761"])
    now = timezone.now()
    call = Call.objects.create(integration=integration, call_key="c1", contact=source)
    task = CallbackTask.objects.create(
        client_number="+79219462761", contact=source, first_missed_at=now, last_missed_at=now
    )
    contact_merge(target=target, source=source)
    call.refresh_from_db()
    task.refresh_from_db()
    assert call.contact == target
    assert task.contact == target


def test_merge_refuses_itself_and_tombstones() -> None:
    a = contact_create(name="A")
    b = contact_create(name="B")
    c = contact_create(name="C")
    with pytest.raises(ValidationError):
        contact_merge(target=a, source=a)
    contact_merge(target=a, source=b)
    with pytest.raises(ValidationError):
        contact_merge(target=c, source=b)
    with pytest.raises(ValidationError):
        contact_merge(target=b, source=c)
