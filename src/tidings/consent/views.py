"""Cookie settings, the sub-processor list, the GPC declaration and the staff page-view
counts. The choice form needs no CSRF cookie, so public pages stay cookie-free (P29):
forged cross-site posts are refused by their Origin instead."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from tidings.consent.cookies import CONSENT_COOKIE, CONSENT_MAX_AGE, own_cookies
from tidings.consent.models import OPTIONAL, SERVER_SIDE, ConsentRecord, PageView
from tidings.consent.services import (
    ChoiceRejected,
    flush_page_views,
    record_choice,
    upcoming_third_parties,
)
from tidings.consent.state import ConsentState, encode_choice
from tidings.core.clientip import client_ip
from tidings.staff.admin_site import site

# When Tidings's handling of the GPC signal last changed (the GPC spec's "lastUpdate").
GPC_LAST_UPDATE = "2026-11-25"
PAGE_VIEW_DAYS = 30


def _same_origin(request: HttpRequest) -> bool:
    origin = request.headers.get("Origin")
    if origin is not None:
        return urlsplit(origin).netloc == request.get_host()
    return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")


def _next_url(request: HttpRequest) -> str:
    wanted = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return "/cookies/"


@csrf_exempt
@require_http_methods(["GET", "POST"])
def cookie_settings(request: HttpRequest) -> HttpResponse:
    """The cookie policy and the choice form; a POST stores a choice (P22)."""
    state: ConsentState = request.consent  # type: ignore[attr-defined]
    if request.method == "POST":
        if not _same_origin(request):
            return HttpResponse("A cookie choice must be made on this site.", status=403)
        choice = request.POST.get("choice", "")
        if choice == "accept":
            categories = [c.value for c in OPTIONAL]
        elif choice == "refuse":
            categories = []
        elif choice == "save":
            categories = request.POST.getlist("category")
        else:
            return HttpResponseBadRequest("Choose “Accept all”, “Refuse all” or a selection.")
        method = (
            ConsentRecord.Method.SETTINGS
            if request.POST.get("from") == "settings"
            else ConsentRecord.Method.BANNER
        )
        try:
            record = record_choice(
                categories=categories,
                method=method,
                version=state.version,
                signal=state.signal,
                consent_id=state.consent_id,
                ip=client_ip(request) or "",
                user_agent=request.headers.get("User-Agent", ""),
                user=request.user if request.user.is_authenticated else None,
            )
        except ChoiceRejected:
            return HttpResponseBadRequest("That is not a cookie category of this site.")
        response = redirect(_next_url(request))
        response.set_cookie(
            CONSENT_COOKIE,
            encode_choice(str(record.consent_id), list(record.categories), state.version),
            max_age=CONSENT_MAX_AGE,
            secure=settings.SECURE,
            httponly=True,
            samesite="Lax",
        )
        return response
    return render(
        request,
        "consent/cookies.html",
        {
            "own_cookies": own_cookies(),
            "parties": [p for p in state.parties if not p.is_server_side],
            "upcoming": [p for p in upcoming_third_parties() if not p.is_server_side],
            "categories": OPTIONAL,
            # This page is the settings: the banner would only repeat its form.
            "is_cookie_settings": True,
        },
    )


@require_GET
def subprocessors(request: HttpRequest) -> HttpResponse:
    """Every third party receiving personal data (service providers on the servers' side:
    mail delivery, hosting, backups; services in the browser), and those announced but not
    yet in effect (P24)."""
    state: ConsentState = request.consent  # type: ignore[attr-defined]
    return render(
        request,
        "consent/subprocessors.html",
        {
            "providers": [p for p in state.parties if p.is_server_side],
            "parties": [p for p in state.parties if not p.is_server_side],
            "upcoming": upcoming_third_parties(),
            "kinds": SERVER_SIDE,
            "notice_days": settings.CONSENT_NOTICE_DAYS,
        },
    )


@require_GET
def gpc_json(request: HttpRequest) -> JsonResponse:
    """The Global Privacy Control well-known resource: this site honours the signal."""
    return JsonResponse({"gpc": True, "lastUpdate": GPC_LAST_UPDATE})


def page_views(request: HttpRequest) -> HttpResponse:
    """The operator's own traffic figures: counts per page and day, nothing per visitor."""
    if not request.user.has_perm("consent.view_pageview"):
        raise PermissionDenied
    # The views still counted in Redis first: the figures are up to this moment.
    flush_page_views()
    since = timezone.localdate() - timedelta(days=PAGE_VIEW_DAYS - 1)
    recent = PageView.objects.filter(day__gte=since)
    by_day = recent.values("day").annotate(total=Sum("count")).order_by("-day")
    by_path = recent.values("path").annotate(total=Sum("count")).order_by("-total", "path")[:100]
    context = {
        **site.each_context(request),
        "title": _("Page views, last %(days)s days") % {"days": PAGE_VIEW_DAYS},
        "by_day": by_day,
        "by_path": by_path,
        "total": recent.aggregate(total=Sum("count"))["total"] or 0,
    }
    return TemplateResponse(request, "consent/page_views.html", context)
