"""The server decides what each request may do with cookies and tags (P22, P28), and
counts page views without knowing who viewed them (P26)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

from tidings.consent.cookies import category_of
from tidings.consent.services import count_page_view
from tidings.consent.state import read_state
from tidings.core import headers

# Pages not counted: assets, the staff console and the API are not visits.
NOT_COUNTED = ("/static/", "/staff/", "/api/", "/.well-known/", "/favicon")


class ConsentMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.consent = SimpleLazyObject(lambda: read_state(request))  # type: ignore[attr-defined]
        response = self.get_response(request)
        self._drop_unconsented_cookies(request, response)
        self._allow_consented_tags(request)
        return response

    @staticmethod
    def _allow_consented_tags(request: HttpRequest) -> None:
        # The third-party tags a page rendered (the visitor consented to them) may load
        # and report home: their origins join the page's Content-Security-Policy.
        state = request.consent  # type: ignore[attr-defined]
        if state._wrapped is empty:
            return  # no page read the consent state: no tag was rendered
        origins = []
        for party in state.tags:
            parts = urlsplit(party.script_src)
            origins.append(f"{parts.scheme}://{parts.netloc}")
        for directive in ("script-src", "connect-src", "img-src"):
            headers.allow(request, directive, origins)

    @staticmethod
    def _drop_unconsented_cookies(request: HttpRequest, response: HttpResponse) -> None:
        # A cookie Tidings lists under a category the visitor has not allowed never leaves
        # the server, whatever code tried to set it.
        for name in list(response.cookies):
            category = category_of(name)
            if category is not None and not request.consent.allows(category):  # type: ignore[attr-defined]
                del response.cookies[name]


class PageViewMiddleware:
    """One counter per day and path for successful HTML pages: no cookie, no IP, no id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.method == "GET"
            and response.status_code == 200
            and response.get("Content-Type", "").startswith("text/html")
            and not request.path.startswith(NOT_COUNTED)
        ):
            count_page_view(counted_path(request))
        return response


def counted_path(request: HttpRequest) -> str:
    """The page as counted. A contact's own link (preferences, unsubscribe, confirmation)
    carries a token that says who they are: it is counted by its route, one counter for
    everyone, so the counters neither hold a token nor grow a row per person."""
    match = request.resolver_match
    if match is not None and "token" in match.kwargs:
        return "/" + match.route
    return request.path
