from __future__ import annotations

import pytest

from mttcrm.sqlite import unicode_like


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("%ромашка%", "ООО Ромашка", True),
        ("%РОМАШКА%", "ооо ромашка", True),
        ("ё%", "Ёлка", True),
        ("%x%", "Ромашка", False),
        ("a_c", "abc", True),
        ("a_c", "abbc", False),
        ("100\\%", "100%", True),  # an escaped % is a literal
        ("100\\%", "1000", False),
        ("%a.b%", "aXb", False),  # regex characters are literal
        (None, "x", None),
    ],
)
def test_unicode_like(pattern: str | None, value: str, expected: bool | None) -> None:
    assert unicode_like(pattern, value, "\\") is expected
