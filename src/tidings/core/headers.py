"""Headers every response carries for privacy's sake.

- `Permissions-Policy`: no page of Tidings uses the camera, the microphone, the
  location, payment, USB or interest-based advertising, so no page (nor anything a
  page could be made to embed) may ask for them.
- `Cache-Control: no-store` on every page shown to someone logged in: their data must
  not stay in a shared or back-button cache. The contacts' own pages (preference link,
  their data, unsubscribe) say it themselves, since their visitors log in nowhere.
- `Content-Security-Policy` on every page: only Tidings's own scripts, styles, fonts and
  connections (no inline script or style attribute anywhere: scripts are static files),
  so an injected tag runs nothing and sends nothing away. A page that needs more says so
  (`allow`): the third-party tags a visitor consented to (consent), the customer's
  thank-you page a hosted form leads to. A view that sets a policy of its own (the
  campaign editor, the preview of a mail, the public archive) keeps it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
    "interest-cohort=(), browsing-topics=()"
)


CSP_DIRECTIVES: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'", "data:"),
    "font-src": ("'self'",),
    "connect-src": ("'self'",),
    "frame-src": ("'self'",),
    "object-src": ("'none'",),
    "base-uri": ("'none'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
}
_EXTRA = "_tidings_csp_extra"


def allow(request: HttpRequest, directive: str, sources: Iterable[str]) -> None:
    """Let this request's page use `sources` (origins such as https://a.example) for
    `directive` of the Content-Security-Policy, beyond Tidings's own."""
    if directive not in CSP_DIRECTIVES:
        raise ValueError(f"not a directive of the policy: {directive}")
    extra: dict[str, list[str]] = request.__dict__.setdefault(_EXTRA, {})
    for source in sources:
        # An origin only: a character that ends a source or a directive would let a
        # caller's value rewrite the policy.
        if source and not any(c in source for c in " ;,'\"\n\r"):
            extra.setdefault(directive, []).append(source)


def allowed(request: HttpRequest, directive: str) -> list[str]:
    """The sources this request's page was `allow`ed for `directive`."""
    extra: dict[str, list[str]] = getattr(request, _EXTRA, {})
    return list(extra.get(directive, []))


def content_security_policy(request: HttpRequest) -> str:
    """The policy of this request's page: Tidings's own sources and what it `allow`ed."""
    extra: dict[str, list[str]] = getattr(request, _EXTRA, {})
    return "; ".join(
        f"{name} {' '.join(dict.fromkeys([*sources, *extra.get(name, [])]))}"
        for name, sources in CSP_DIRECTIVES.items()
    )


class PrivacyHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Content-Security-Policy", content_security_policy(request))
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "Cache-Control" not in response:
            add_never_cache_headers(response)
        return response
