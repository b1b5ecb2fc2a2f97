"""Sessions end after a while without use, not only after their lifetime: a computer
left logged in stops being a way in. Staff, who see personal data of every account,
get a shorter idle limit than customers.

The time of the last request is kept in the session, rewritten at most once a minute
(not on every request: each write is a database or cache write).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

LAST_SEEN = "tidings_last_seen"
REWRITE_AFTER = 60  # seconds


def idle_limit(user: object) -> int:
    """Seconds without a request after which this user's session ends."""
    minutes = (
        settings.STAFF_SESSION_IDLE_MINUTES
        if getattr(user, "is_staff", False)
        else (settings.SESSION_IDLE_MINUTES)
    )
    return int(minutes) * 60


class IdleTimeoutMiddleware:
    """After authentication: a session idle for longer than its limit is logged out
    (the request goes on as anonymous, so a page that needs a login asks for one)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            last = request.session.get(LAST_SEEN)
            if isinstance(last, int | float) and now - last > idle_limit(user):
                logout(request)
            elif not isinstance(last, int | float) or now - last > REWRITE_AFTER:
                request.session[LAST_SEEN] = now
        return self.get_response(request)
