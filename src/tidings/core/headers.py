"""Headers every response carries for privacy's sake.

- `Permissions-Policy`: no page of Tidings uses the camera, the microphone, the
  location, payment, USB or interest-based advertising, so no page (nor anything a
  page could be made to embed) may ask for them.
- `Cache-Control: no-store` on every page shown to someone logged in: their data must
  not stay in a shared or back-button cache. The contacts' own pages (preference link,
  their data, unsubscribe) say it themselves, since their visitors log in nowhere.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
    "interest-cohort=(), browsing-topics=()"
)


class PrivacyHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "Cache-Control" not in response:
            add_never_cache_headers(response)
        return response
