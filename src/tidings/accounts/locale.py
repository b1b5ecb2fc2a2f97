"""A logged-in user's language and time zone, chosen in My Account, for every page.

LocaleMiddleware has already picked the visitor's language (their cookie, else the
browser's Accept-Language); a user who chose a language keeps it on every browser.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation

from tidings.core.locales import is_time_zone


class UserLocaleMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        chosen = getattr(user, "language", "") if user and user.is_authenticated else ""
        if chosen:
            translation.activate(chosen)
            request.LANGUAGE_CODE = chosen
        zone = getattr(user, "time_zone", "") if user and user.is_authenticated else ""
        if zone and is_time_zone(zone):
            timezone.activate(zoneinfo.ZoneInfo(zone))
        else:
            timezone.activate(zoneinfo.ZoneInfo(settings.TIME_ZONE))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
