"""`{% send_controls %}`: the send controls a campaign page shows for the campaign's
status (test, send now, schedule, pause, resume, cancel, live progress, report)."""

from __future__ import annotations

from typing import Any

from django import template

from tidings.sending import controls

register = template.Library()


@register.inclusion_tag("sending/_controls.html", takes_context=True)
def send_controls(
    context: template.Context, campaign: Any, back: str = "", with_test: bool = True
) -> dict[str, Any]:
    """`back` is where the buttons return to (the page showing them); `with_test=False`
    on a page that has its own test form (the preview)."""
    request = context["request"]
    return {
        **controls.context_for(campaign, user=request.user),
        "back": back or request.path,
        "with_test": with_test,
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }
