from __future__ import annotations

import pytest

from contacts import phones

SAME_CLIENT = [
    "+79219462761",
    "79219462761",
    "89219462761",
    "0079219462761",
    "9219462761",
    "+7 (921) 946-27-61",
    "8 921 946 27 61",
    "sip:79219462761@pstn",
    "79219462761@pstn",
    "tel:+7-921-946-27-61",
]


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
