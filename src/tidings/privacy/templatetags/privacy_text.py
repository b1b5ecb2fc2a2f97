"""`{{ entry.retention|plain }}`: a data-map phrase in the customer's words."""

from django import template

from tidings.core.datamap import plain as plain_text

register = template.Library()


@register.filter
def plain(value: str) -> str:
    return plain_text(str(value))
