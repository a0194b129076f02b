"""Fuzzing phone-number normalisation (contacts/phones.py).

Arbitrary text gives an E.164 string or None (never an exception); normalising is idempotent; PBX SIP
IDs are never client numbers; every valid Russian number comes back the same from every format people
and the PBX write it in.
"""

from __future__ import annotations

import re

import phonenumbers
from hypothesis import assume, example, given
from hypothesis import strategies as st

from contacts import phones
from tests.fuzz.strategies import phone_text

E164 = re.compile(r"\+[1-9]\d{6,14}")


@given(raw=phone_text)
@example(raw="٨٩٢١٩٤٦٢٧٦١")  # Arabic-Indic digits
@example(raw="+７９２１９４６２７６１")  # full-width digits
@example(raw="²²²²²²²²²²²")  # superscripts: isdigit() but no decimal digits
@example(raw="sip:@;")
@example(raw="+" + "9" * 300)
@example(raw="\x00")
@example(raw="\ud800")
def test_any_text_gives_e164_or_none(raw: str) -> None:
    result = phones.normalize(raw)
    assert result is None or E164.fullmatch(result), result
    if result is not None:
        # Idempotent: a stored number normalises to itself (lookups by E.164 find it).
        assert phones.normalize(result) == result
        assert not phones.is_pbx_sip_id(result)
        assert phones.normalize(phones.format_for_people(result)) == result
        assert phones.dial_format(result) == result[1:]
    # The helpers never raise either.
    assert isinstance(phones.is_pbx_sip_id(raw), bool)
    assert phones.digits_only(raw) == "".join(ch for ch in phones.digits_only(raw) if ch.isdigit())
    assert isinstance(phones.clean(raw), str)
    assert isinstance(phones.format_for_people(raw), str)
    assert isinstance(phones.dial_format(raw), str)


@st.composite
def valid_russian_numbers(draw: st.DrawFn) -> str:
    """Ten national digits of a valid Russian number (mobile 9xx, geographic 3xx/4xx/8xx)."""
    first = draw(st.sampled_from("3489"))
    rest = draw(st.text("0123456789", min_size=9, max_size=9))
    national = first + rest
    parsed = phonenumbers.parse("+7" + national, None)
    assume(phonenumbers.is_valid_number(parsed) and phonenumbers.region_code_for_number(parsed) == "RU")
    return national


def _formats(national: str) -> list[str]:
    a, b, c, d = national[:3], national[3:6], national[6:8], national[8:]
    return [
        f"8 ({a}) {b}-{c}-{d}",
        f"+7 {a} {b} {c} {d}",
        f"+7 ({a}) {b}-{c}-{d}",
        f"+7{national}",
        f"7{national}",
        f"8{national}",
        f"8-{a}-{b}-{c}-{d}",
        f"007{national}",
        f"+7\u00a0{a}\u00a0{b}\u2011{c}\u2011{d}",  # no-break spaces and hyphens, as pasted from the web
        f"  +7 {a} {b}{c}{d}  ",
        f"tel:+7-{a}-{b}-{c}-{d}",
        f"sip:7{national}@pstn",
        f"7{national}@pstn",
        f"sip:+7{national}@sip.mtt.ru;user=phone",
    ]


@given(national=valid_russian_numbers())
@example(national="9219462761")
@example(national="8124241500")
@example(national="8005553535")
@example(national="4996497803")
def test_valid_russian_numbers_round_trip_in_every_format(national: str) -> None:
    e164 = "+7" + national
    for written in _formats(national):
        assert phones.normalize(written) == e164, written
    assert phones.normalize(phones.format_for_people(e164)) == e164
    assert phones.dial_format(e164) == "7" + national


@given(national=valid_russian_numbers())
@example(national="9219462761")
def test_ten_digits_without_a_prefix_are_a_russian_number(national: str) -> None:
    # How people type a mobile number: 921 946-27-61. A 10-digit national number starting with 8
    # (812 St Petersburg, 800 free phone) reads like a trunk prefix; libphonenumber settles it.
    assume(not national.startswith("8"))
    a, b, c, d = national[:3], national[3:6], national[6:8], national[8:]
    assert phones.normalize(national) == "+7" + national
    assert phones.normalize(f"({a}) {b}-{c}-{d}") == "+7" + national


@given(sip=st.text("0123456789", min_size=9, max_size=15).map(lambda d: "883" + d))
@example(sip="883140582526566")
def test_pbx_sip_ids_are_never_client_numbers(sip: str) -> None:
    for written in (sip, "+" + sip, "00" + sip, f"sip:{sip}@sip.mtt.ru"):
        assert phones.is_pbx_sip_id(written)
        assert phones.normalize(written) is None
