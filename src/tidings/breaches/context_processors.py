from typing import Any

from django.http import HttpRequest

from tidings.breaches.models import Notice


def breach_notices(request: HttpRequest) -> dict[str, Any]:
    """The breach notices a signed-in customer has not acknowledged: a banner on every
    page until they have (P33), beside the mail."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.is_staff:
        return {}
    unread = Notice.objects.filter(user=user, acknowledged_at__isnull=True).select_related(
        "incident"
    )
    return {"breach_notices": list(unread.order_by("pk")[:5])}
