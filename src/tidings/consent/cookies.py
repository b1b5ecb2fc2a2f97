"""Every cookie Tidings itself can set, with its category and lifetime (P22).

The cookie policy page, the banner version and docs/consent.md follow this list; the
consent middleware deletes from a response any cookie of a category the visitor has not
allowed, so a cookie added here in the wrong category cannot slip through.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from tidings.consent.models import Category

CONSENT_COOKIE = settings.CONSENT_COOKIE_NAME
CONSENT_MAX_AGE = 183 * 24 * 3600  # six months


@dataclass(frozen=True)
class Cookie:
    name: str
    category: str
    purpose: str
    lifetime: str


def own_cookies() -> list[Cookie]:
    hours = settings.SESSION_COOKIE_AGE // 3600
    csrf_days = settings.CSRF_COOKIE_AGE // (24 * 3600)
    return [
        Cookie(
            settings.SESSION_COOKIE_NAME,
            Category.NECESSARY,
            "keeps you logged in; set when you log in",
            f"until you log out, at most {hours} hours",
        ),
        Cookie(
            settings.CSRF_COOKIE_NAME,
            Category.NECESSARY,
            "protects the forms of the logged-in pages, login and registration against "
            "forged requests",
            f"{csrf_days} days",
        ),
        Cookie(
            "messages",
            Category.NECESSARY,
            "carries a one-time notice (such as “your changes are saved”) to the next page",
            "until the notice is shown",
        ),
        Cookie(
            CONSENT_COOKIE,
            Category.NECESSARY,
            "remembers your cookie choice; set only when you make one, it holds an "
            "anonymous id, the categories you allowed and the banner version",
            "6 months",
        ),
        Cookie(
            settings.LANGUAGE_COOKIE_NAME,
            Category.NECESSARY,
            "remembers the language you chose; set only when you choose one or log in with one",
            "1 year",
        ),
    ]


def category_of(name: str) -> str | None:
    for cookie in own_cookies():
        if cookie.name == name:
            return cookie.category
    return None
