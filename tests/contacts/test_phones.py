from __future__ import annotations

import pytest

from contacts import phones
from tests.contacts.numbers import SAME_CLIENT


@pytest.mark.parametrize("raw", SAME_CLIENT)
def test_every_pbx_and_human_format_normalises_to_one_e164(raw: str) -> None:
    assert phones.normalize(raw) == "+79219462761"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("78124241500@pstn", "+78124241500"),  # API.md: the accountId form
        ("88124241500", "+78124241500"),
        ("88005553535", "+78005553535"),
        ("0079581234567", "+79581234567"),
        ("+4915112345678", "+4915112345678"),
        ("004915112345678", "+4915112345678"),
        ("8104915112345678", "+4915112345678"),  # the Russian international prefix 8~10
        ("4915112345678", "+4915112345678"),  # a foreign number without its "+"
        ("+77012345678", "+77012345678"),  # Kazakhstan shares +7
        # 8 831 …: an 11-digit Nizhny Novgorod number is NOT a SIP ID although it starts with 8831.
        ("88312123456", "+78312123456"),
    ],
)
def test_other_numbers(raw: str, e164: str) -> None:
    assert phones.normalize(raw) == e164


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "anonymous", "101", "12345", "4241500", "+7 921", "79219462761x", "@pstn", "sip:"],
)
def test_not_phone_numbers(raw: str) -> None:
    assert phones.normalize(raw) is None


@pytest.mark.parametrize(
    "raw",
    ["883140582526566", "+883140582526566", "00883140582526566", "sip:883140582526566@10.133.51.137",
     "883140582526566@vpbx.mtt.ru", "<sip:883140582526566@vpbx.mtt.ru>", " 883140582526566 "],
)  # fmt: skip
def test_a_sip_id_in_any_form_has_one_key(raw: str) -> None:
    assert phones.sip_id_key(raw) == "883140582526566"


@pytest.mark.parametrize("raw", ["", "anonymous", "an_prd100275045-3881851", "sip:", "@pstn", "12a"])
def test_what_is_no_numeric_sip_id_has_no_key(raw: str) -> None:
    assert phones.sip_id_key(raw) == ""


@pytest.mark.parametrize(
    "raw", ["883140582526566", "+883140582526566", "00883140582526566", "sip:883140000000001@sip.mtt.ru"]
)
def test_pbx_sip_ids_are_not_client_numbers(raw: str) -> None:
    assert phones.is_pbx_sip_id(raw)
    assert phones.normalize(raw) is None


@pytest.mark.parametrize("raw", ["88312123456", "+79219462761", "8831", "12345"])
def test_numbers_that_are_not_sip_ids(raw: str) -> None:
    assert not phones.is_pbx_sip_id(raw)


def test_default_region_setting(settings: object) -> None:
    assert phones.normalize("9219462761") == "+79219462761"
    settings.PHONE_DEFAULT_REGION = "DE"  # type: ignore[attr-defined]
    assert phones.normalize("015112345678") == "+4915112345678"
    # The PBX's own Russian formats keep working whatever the region.
    assert phones.normalize("89219462761") == "+79219462761"


def test_format_for_people() -> None:
    assert phones.format_for_people("+79219462761") == "+7 921 946-27-61"
    assert phones.format_for_people("+78124241500") == "+7 812 424-15-00"
    assert phones.format_for_people("+4915112345678") == "+49 1511 2345678"
    assert phones.format_for_people("") == ""
    assert phones.format_for_people("not a number") == "not a number"


def test_dial_format() -> None:
    assert phones.dial_format("+79219462761") == "79219462761"
    assert phones.dial_format("+78124241500") == "78124241500"
    assert phones.dial_format("+4915112345678") == "4915112345678"
    assert len(phones.dial_format("+79219462761")) == 11


def test_digits_only_ignores_uri_decoration() -> None:
    assert phones.digits_only("sip:12-34@host;user=phone") == "1234"
    assert phones.digits_only("anonymous") == ""


# --- Our own lines (guide §6.4: the company's numbers arrive in any form too) ---------------------

SAME_LINE = [
    "74996497803",  # externalNumbersInfo's form (guide §9.1) and the parked leg's callee (§10.1.1)
    "+74996497803",
    "84996497803",
    "0074996497803",
    "74996497803@pstn",
    "sip:74996497803@pstn",
    "sip:74996497803@10.133.33.136:5073;user=phone",
    "sips:+74996497803@sip.mtt.ru",
    "tel:+7-499-649-78-03",
    "+7 (499) 649-78-03",
]


@pytest.mark.parametrize("raw", SAME_LINE)
def test_every_form_of_our_line_gives_one_key(raw: str) -> None:
    assert phones.line_key(raw) == "+74996497803"


@pytest.mark.parametrize(
    "raw", ["78005560251", "88005560251", "+78005560251", "0078005560251", "78005560251@pstn"]
)
def test_an_8800_line_in_every_form(raw: str) -> None:
    assert phones.line_key(raw) == "+78005560251"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        # The guide's setParkingNumbers example: not a phone number to libphonenumber, keyed by digits.
        ("880023213", "880023213"),
        ("880023213@pstn", "880023213"),
        ("101", "101"),
        ("", ""),
        ("   ", ""),
        ("anonymous", ""),
        ("sip:@pstn", ""),
    ],
)
def test_lines_that_are_not_phone_numbers(raw: str, key: str) -> None:
    assert phones.line_key(raw) == key


def test_a_line_key_differs_from_other_lines() -> None:
    assert phones.line_key("74996497803") != phones.line_key("74996497804")
    assert phones.line_key("84996497803") != phones.line_key("78005560251")


# --- one reading of a number, whatever its form (probe of the notify URL, issue: numbers) ----------------


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("＋７９２１９４６００１７", "+79219460017"),  # full-width, as some phones send them
        ("８ (９２１) ９４６-００-１７", "+79219460017"),
        ("٧٩٢١٩٤٦٠٠١٧", "+79219460017"),  # Arabic-Indic
        ("۸۹۲۱۹۴۶۰۰۱۷", "+79219460017"),  # Extended Arabic-Indic (Persian)
        ("+7 921 946 00 09 доб. 12", "+79219460009"),  # an extension after the number: split off
        ("+7 921 946 00 09, доб 12", "+79219460009"),
        ("+7 921 946 00 09 ext. 12", "+79219460009"),
        ("+7 921 946 00 09 #12", "+79219460009"),
        ("+7 921 946 00 09,12", "+79219460009"),
        ("tel:+79219460009;ext=12", "+79219460009"),
    ],
)
def test_every_form_reads_through_one_function(raw: str, e164: str) -> None:
    assert phones.normalize(raw) == e164
    assert phones.digits_only(raw).isascii()


@pytest.mark.parametrize(
    "raw",
    [
        "79000000000.0",  # a JSON float (7.9e10) as text
        "7.9e+10",
        "-1",
        "-79219462761",  # negative: no dialling format
        "7" * 60,  # longer than E.164 allows
        "+" + "7" * 16,
        "доб. 12",
    ],
)
def test_junk_is_no_phone_number(raw: str) -> None:
    assert phones.normalize(raw) is None


@pytest.mark.parametrize(
    ("typed", "number", "extension"),
    [
        ("+7 921 946 27 77, доб 5", "+7 921 946 27 77", "5"),
        ("+7 921 946 27 77,доб.5", "+7 921 946 27 77", "5"),
        ("+7 921 946 27 77, ext. 5", "+7 921 946 27 77", "5"),
        ("+7 921 946 27 77, #5", "+7 921 946 27 77", "5"),
        ("+7 921 946 27 77 доб. １２", "+7 921 946 27 77", "12"),
    ],
)
def test_a_comma_before_the_extension(typed: str, number: str, extension: str) -> None:
    assert phones.split_extension(typed) == (number, extension)


@pytest.mark.parametrize(
    "raw",
    ["anonymous", "Anonymous", "ANONYMOUS@pstn", "sip:anonymous@anonymous.invalid",
     '"Anonymous" <sip:anonymous@anonymous.invalid>', "restricted", "Private", "unavailable", "Скрыт",
     "Номер скрыт", " unknown "],
)  # fmt: skip
def test_hidden_caller_ids(raw: str) -> None:
    assert phones.is_hidden(raw)
    assert phones.normalize(raw) is None


@pytest.mark.parametrize(
    "raw", ["", "79219462761", "+7 921 946-27-61", "101", "anon", "Анна", "sip:101@host"]
)
def test_numbers_and_names_are_not_hidden(raw: str) -> None:
    assert not phones.is_hidden(raw)


# --- foreign numbers, and what only looks like a Russian one (probe: numbers) -----------------------------

# One foreign client, written the ways people and networks write it: with "+", the international prefixes
# 00 and Russia's 8~10, without its "+" (as the PBX passes what it received), as a SIP URI.
FOREIGN = {
    "+375291234567": ["+375 29 123-45-67", "375291234567", "00375291234567", "8 10 375 29 123 45 67",
                      "sip:375291234567@pstn", "tel:+375-29-123-45-67"],
    "+380441234567": ["+380 44 123 4567", "380441234567", "00 380 44 123 4567", "810380441234567"],
    "+493012345678": ["+49 30 12345678", "00493012345678", "810493012345678", "493012345678"],
    "+12125550123": ["+1 (212) 555-0123", "12125550123", "0012125550123", "81012125550123"],
    "+442079460958": ["+44 20 7946 0958", "442079460958", "00 44 20 7946 0958", "+44 (0) 20 7946 0958"],
    "+447911123456": ["+44 7911 123456", "447911123456", "0044 7911 123456"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "e164"), [(raw, e164) for e164, forms in FOREIGN.items() for raw in forms], ids=lambda v: v
)
def test_a_foreign_number_in_every_form_is_one_number(raw: str, e164: str) -> None:
    assert phones.normalize(raw) == e164
    assert phones.dial_problem(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        # Belarus's own way to write +375 29 123-45-67 and +375 17 123-45-67 (trunk 8, then 0 and the code)
        "80291234567",
        "8 (029) 123-45-67",
        "8 017 123 45 67",
        "8 044 123 45 67",  # Ukraine's old way to write +380 44 123 45 67
        "sip:80291234567@pstn",
        # +7 codes never start with 0, 1 or 2 (Russia 3, 4, 8, 9; Kazakhstan 6, 7)
        "+7 029 123 45 67",
        "70291234567",
        "+7 (123) 456-78-90",
        "8 212 555 01 23",
    ],
)
def test_what_reads_as_a_plus_7_code_that_does_not_exist_is_no_phone_number(raw: str) -> None:
    # It was stored as +70291234567 (shown "+7 0291234567", dialled as 70291234567: no such number), and the
    # same client calling from +375 29 123-45-67 was another contact.
    assert phones.normalize(raw) is None
    assert phones.line_key(raw) == phones.digits_only(raw)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("8 (301) 222-33-44", "+73012223344"),  # Ulan-Ude
        ("8 401 222 33 44", "+74012223344"),  # Kaliningrad
        ("8 (800) 555-35-35", "+78005553535"),
        ("8 958 123 45 67", "+79581234567"),
        ("8 727 222 33 44", "+77272223344"),  # Almaty: Kazakhstan shares +7
        ("8 701 234 56 78", "+77012345678"),
    ],
)
def test_every_first_digit_a_plus_7_code_has_still_reads(raw: str, e164: str) -> None:
    assert phones.normalize(raw) == e164


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("8 (029) 123-45-67", "в России нет кода 029"),
        ("8 044 123 45 67", "в России нет кода 044"),
        ("+7 (123) 456-78-90", "в России нет кода 123"),
    ],
)
def test_a_code_that_does_not_exist_is_refused_saying_so(typed: str, words: str) -> None:
    problem = phones.dial_problem(typed)
    assert problem is not None and words in problem and "+375 29 123-45-67" in problem


@pytest.mark.parametrize(
    ("typed", "number", "extension"),
    [
        ("+7 (495) 123-45-67 (доб. 123)", "+7 (495) 123-45-67", "123"),
        ("+7 (495) 123-45-67 (доб.123)", "+7 (495) 123-45-67", "123"),
        ("8 495 123-45-67 (ext. 5)", "8 495 123-45-67", "5"),
        ("8 495 123-45-67 ( вн. 5 )", "8 495 123-45-67", "5"),
        ("8 495 123-45-67 (#5)", "8 495 123-45-67", "5"),
        ("8 495 123-45-67\u00a0(доб.\u00a05)", "8 495 123-45-67", "5"),
        # Brackets around digits alone are no extension; an unclosed one is not one written in brackets.
        ("8 495 123-45-67 (5)", "8 495 123-45-67 (5)", ""),
        ("8 495 123-45-67 доб. 5)", "8 495 123-45-67 доб. 5)", ""),
        ("(доб. 5)", "(доб. 5)", ""),
    ],
)
def test_an_extension_in_brackets(typed: str, number: str, extension: str) -> None:
    # As business cards and e-mail signatures write it: it was refused as "digits only … an extension goes
    # after the number", which it was.
    assert phones.split_extension(typed) == (number, extension)
    if extension:
        assert phones.normalize(typed) == "+74951234567"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("+79219462761", "+7 921 946-27-61"),
        ("89219462761", "+7 921 946-27-61"),
        ('"Иван" <sip:+79219462761@pstn;user=phone>', "+7 921 946-27-61"),
        ("+375291234567", "+375 29 123-45-67"),
        # Not phone numbers: without the SIP decoration around them (they were shown as received).
        ("sip:101@10.133.33.136:5073;user=phone", "101"),
        ("101@pstn", "101"),
        ("<sip:880023213@vpbx.mtt.ru>", "880023213"),
        ("4241500", "4241500"),
        ("anonymous", "anonymous"),
        ("sip:@pstn", "sip:@pstn"),
        ("", ""),
    ],
)
def test_any_number_for_people(value: str, shown: str) -> None:
    assert phones.for_people(value) == shown


@pytest.mark.parametrize(
    "raw",
    ['"+7 921 946 27 61"', "'89219462761", "«8 (921) 946-27-61»", "„+7 921 946 27 61“", "“8 921 946-27-61”",
     "‘+79219462761’", '"sip:79219462761@pstn"'],
)  # fmt: skip
def test_a_quoted_number_is_the_number(raw: str) -> None:
    # From a CSV or JSON, a letter, a spreadsheet's text cell: it was refused as "check the country code".
    assert phones.normalize(raw) == "+79219462761"
    assert phones.dial_problem(raw) is None


# --- the data migration of numbers stored as a +7 code that does not exist -------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_forgets_the_e164_of_a_plus_7_code_that_does_not_exist() -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("contacts", "0004_phone_extension")], [("contacts", "0005_no_impossible_plus7")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        contact = old.get_model("contacts", "Contact").objects.create(name="Минск")
        Number = old.get_model("contacts", "PhoneNumber")
        for e164, raw in [
            ("+70291234567", "8 (029) 123-45-67"),
            ("+71234567890", "+7 (123) 456-78-90"),
            ("+79219462761", "8 921 946-27-61"),
        ]:
            Number.objects.create(
                contact_id=contact.pk, e164=e164, raw=raw, raw_digits=phones.digits_only(raw)
            )
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    from contacts.models import PhoneNumber
    from contacts.selectors import contact_find_by_number

    assert set(PhoneNumber.objects.values_list("e164", "raw_digits")) == {
        ("", "80291234567"),
        ("", "71234567890"),
        ("+79219462761", "89219462761"),
    }
    # Found as typed, as a number now typed the same way would be.
    assert contact_find_by_number(number="8 (029) 123-45-67") is not None
