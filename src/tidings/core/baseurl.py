"""The public address that links in mail and pages start with: one builder for all.

TIDINGS_BASE_URL names the site; with TIDINGS_SECURE on, its scheme is https whatever the
setting says (a link in mail that starts with http:// would send the token in it over
the network in clear, or through a redirect). Settings are read at each call, so a
change (or a test's override) holds at once. A base URL that says http:// while secure
is on is a configuration mistake: each process warns of it when it starts.
"""

from __future__ import annotations

import logging

from django.conf import settings

logger = logging.getLogger("tidings")


def base_url() -> str:
    """TIDINGS_BASE_URL without a trailing slash, https when TIDINGS_SECURE is on."""
    url = str(settings.BASE_URL).rstrip("/")
    if settings.SECURE and url.lower().startswith("http://"):
        return "https://" + url[len("http://") :]
    return url


def absolute(path: str) -> str:
    """The absolute URL of a path of this site (a path starts with "/")."""
    return base_url() + path


def warn_if_insecure() -> bool:
    """Log a warning when the configured base URL says http while secure is on."""
    if settings.SECURE and str(settings.BASE_URL).lower().startswith("http://"):
        logger.warning(
            "TIDINGS_BASE_URL is %s but TIDINGS_SECURE is true: links use %s instead; "
            "set TIDINGS_BASE_URL to the https address.",
            settings.BASE_URL,
            base_url(),
        )
        return True
    return False
