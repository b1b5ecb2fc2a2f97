"""`{{ value|percent }}`: a rate of the reports, one decimal and a percent sign, or "—"
when there is nothing to divide by."""

from __future__ import annotations

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{floatformat(value, 1)} %"
