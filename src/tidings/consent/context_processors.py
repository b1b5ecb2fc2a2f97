from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from tidings.consent.models import OPTIONAL
from tidings.consent.services import upcoming_third_parties


def consent(request: HttpRequest) -> dict[str, Any]:
    """The visitor's cookie choice, the banner, the allowed tags and in-app notices."""
    state = getattr(request, "consent", None)
    if state is None:
        return {}
    user = getattr(request, "user", None)
    notices = []
    if user is not None and user.is_authenticated and getattr(user, "account_id", None):
        notices = upcoming_third_parties(timezone.now())
    return {
        "consent": state,
        "consent_categories": OPTIONAL,
        "third_party_notices": notices,
    }
