from __future__ import annotations

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def percent(share: float | None) -> str:
    """0.25 -> "25.0 %" (localised decimal separator); "—" when there is no share."""
    if share is None:
        return "—"
    return f"{number_format(share * 100, 1)} %"
