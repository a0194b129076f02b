from __future__ import annotations

from django import template
from django.utils.formats import number_format

from ..spreadsheets import percent_of

register = template.Library()


@register.filter
def percent(share: float | None) -> str:
    """0.25 -> "25.0 %" (localised decimal separator), rounded half up as in the CSV (2/7 -> "28.6 %");
    "—" when there is no share."""
    if share is None:
        return "—"
    return f"{number_format(percent_of(share), 1)} %"
