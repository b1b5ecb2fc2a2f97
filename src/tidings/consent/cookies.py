"""Every cookie Tidings itself can set, with its category and lifetime (P22).

The cookie policy page, the banner version and docs/consent.md follow this list; the
consent middleware deletes from a response any cookie of a category the visitor has not
allowed, so a cookie added here in the wrong category cannot slip through.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext, gettext_noop, ngettext

from tidings.consent.models import Category

CONSENT_COOKIE = settings.CONSENT_COOKIE_NAME
CONSENT_MAX_AGE = 183 * 24 * 3600  # six months


@dataclass(frozen=True)
class Cookie:
    name: str
    category: str
    # In English (the banner version hashes it); pages show it with {% translate %}.
    purpose: str
    # In the language of the request.
    lifetime: str


def own_cookies() -> list[Cookie]:
    hours = settings.SESSION_COOKIE_AGE // 3600
    csrf_days = settings.CSRF_COOKIE_AGE // (24 * 3600)
    return [
        Cookie(
            settings.SESSION_COOKIE_NAME,
            Category.NECESSARY,
            gettext_noop("keeps you logged in; set when you log in"),
            gettext("until you log out, at most %(hours)s hours") % {"hours": hours},
        ),
        Cookie(
            settings.CSRF_COOKIE_NAME,
            Category.NECESSARY,
            gettext_noop(
                "protects the forms of the logged-in pages, login and registration against "
                "forged requests"
            ),
            ngettext("%(days)s day", "%(days)s days", csrf_days) % {"days": csrf_days},
        ),
        Cookie(
            "messages",
            Category.NECESSARY,
            gettext_noop(
                "carries a one-time notice (such as “your changes are saved”) to the next page"
            ),
            gettext("until the notice is shown"),
        ),
        Cookie(
            CONSENT_COOKIE,
            Category.NECESSARY,
            gettext_noop(
                "remembers your cookie choice; set only when you make one, it holds an "
                "anonymous id, the categories you allowed and the banner version"
            ),
            gettext("6 months"),
        ),
        Cookie(
            settings.LANGUAGE_COOKIE_NAME,
            Category.NECESSARY,
            gettext_noop("remembers the language you chose; set only when you choose one"),
            gettext("1 year"),
        ),
    ]


def category_of(name: str) -> str | None:
    for cookie in own_cookies():
        if cookie.name == name:
            return cookie.category
    return None
