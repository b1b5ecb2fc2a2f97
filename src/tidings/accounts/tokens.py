"""Signed, expiring links for confirming addresses."""

from __future__ import annotations

from typing import Any

from django.core import signing
from django.utils.translation import gettext_lazy as _


class InvalidLink(Exception):
    """A link that was forged, altered, expired or already used."""


def make(purpose: str, **payload: Any) -> str:
    return signing.dumps(payload, salt=f"tidings.{purpose}", compress=True)


def read(purpose: str, token: str, *, max_age_days: int) -> dict[str, Any]:
    try:
        value: dict[str, Any] = signing.loads(
            token, salt=f"tidings.{purpose}", max_age=max_age_days * 86400
        )
    except signing.SignatureExpired:
        raise InvalidLink(_("This link has expired. Ask for a new one below.")) from None
    except signing.BadSignature:
        raise InvalidLink(_("This link is not valid. Check that you copied all of it.")) from None
    return value
