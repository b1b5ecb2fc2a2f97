"""`{{ value|percent }}`: a rate of the reports, one decimal and a percent sign, or "—"
when there is nothing to divide by. `{{ subject|readable_subject }}`: a subject with its
tags as words ("News for you, [first name]"), as the report shows it."""

from __future__ import annotations

from django import template
from django.template.defaultfilters import floatformat

from tidings.sending import reports

register = template.Library()


@register.filter
def percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{floatformat(value, 1)} %"


@register.filter
def readable_subject(subject: str) -> str:
    return reports.readable_subject(subject)
