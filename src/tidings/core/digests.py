"""Keyed hashes of addresses: how Tidings recognises an address it must not mail
without keeping the address itself (suppression after erasure or an opt-out)."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def email_digest(email: str) -> str:
    """HMAC-SHA256 of the address (trimmed, lower case) under TIDINGS_SUPPRESSION_KEY."""
    key = settings.SUPPRESSION_KEY.encode()
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()
