"""Why a staff member is looking (P7): stated once, kept in the session for a while.

Every audit event a staff read or change writes carries the reason stated here, so the
log answers "why" as well as "who, what, when".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django import forms
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SESSION_KEY = "staff_access_reason"


@dataclass(frozen=True)
class StatedReason:
    text: str
    until: datetime


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Why do you need to see customers' personal data?"),
        min_length=3,
        max_length=200,
        help_text=_(
            "A ticket reference or a short explanation, e.g. “ticket 4521: customer "
            "asks to correct their address”."
        ),
        widget=forms.TextInput(attrs={"autofocus": True, "size": 60}),
    )


def state_reason(request: HttpRequest, text: str) -> StatedReason:
    """Remember `text` as this staff member's reason for AUDIT_REASON_MINUTES."""
    until = timezone.now() + timedelta(minutes=settings.AUDIT_REASON_MINUTES)
    request.session[SESSION_KEY] = {"text": text.strip(), "until": until.timestamp()}
    return StatedReason(text.strip(), until)


def stated_reason(request: HttpRequest) -> StatedReason | None:
    """The reason in force, or None when none was stated or it has expired."""
    return reason_in(request.session)


def reason_in(session: SessionBase) -> StatedReason | None:
    """The reason in force in `session` (a page's, or a WebSocket's: desk.chat)."""
    value = session.get(SESSION_KEY)
    if not isinstance(value, dict):
        return None
    until = datetime.fromtimestamp(value.get("until", 0), tz=timezone.get_current_timezone())
    if until <= timezone.now() or not value.get("text"):
        session.pop(SESSION_KEY, None)
        return None
    return StatedReason(str(value["text"]), until)
