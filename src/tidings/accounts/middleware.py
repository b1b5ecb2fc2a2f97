from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

# Pages a user of a closed account can still reach: to reopen it or log out.
ALLOWED_WHEN_CLOSED = ("accounts:closed", "accounts:reopen", "accounts:logout")


class ClosedAccountMiddleware:
    """A closed account does nothing but wait for erasure or reopening (P21)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        account = getattr(user, "account", None) if user and user.is_authenticated else None
        if account is not None and not account.is_processing_allowed:
            allowed = {reverse(name) for name in ALLOWED_WHEN_CLOSED}
            if request.path.startswith("/account/") and request.path not in allowed:
                return redirect("accounts:closed")
        return self.get_response(request)
