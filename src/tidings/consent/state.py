"""What a request may do (P22, P28): read on the server from the consent cookie and the
browser's Do Not Track / Global Privacy Control signals, never decided by a script."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import redis
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone

from tidings.consent.cookies import CONSENT_COOKIE, CONSENT_MAX_AGE, own_cookies
from tidings.consent.models import OPTIONAL, THIRD_PARTIES_KEY, TRACKING, Category, ThirdParty

SALT = "tidings.consent.cookie"
# A real consent cookie is about 200 characters; anything much longer is not ours.
MAX_COOKIE_LENGTH = 600
# Bump when the banner's own wording changes: consent is then asked again.
BANNER_TEXT = (
    "Tidings sets only strictly necessary cookies unless you allow more. Choose per "
    "category: preferences, analytics, advertising, support widget."
)


# How long the active third parties are kept at most (every write forgets them at once).
THIRD_PARTIES_SECONDS = 300


def active_third_parties() -> list[ThirdParty] | None:
    """Every active third party, in the model's order, kept in the cache with Redis (a
    cache in the database is a statement too: None without it). Nothing personal."""
    if not settings.REDIS_URL:
        return None
    try:
        kept = cache.get(THIRD_PARTIES_KEY)
        if kept is None:
            kept = list(ThirdParty.objects.filter(active=True))
            cache.set(THIRD_PARTIES_KEY, kept, THIRD_PARTIES_SECONDS)
    except redis.RedisError:
        return None  # Redis is away: every page reads the database, as without it
    return list(kept)


def effective_third_parties(now: datetime | None = None) -> list[ThirdParty]:
    """The third parties whose notice period is over: the only ones ever rendered."""
    now = now or timezone.now()
    active = active_third_parties()
    if active is None:
        return list(ThirdParty.objects.filter(active=True, effective_at__lte=now))
    return [p for p in active if p.effective_at <= now]


def banner_version(parties: list[ThirdParty] | None = None) -> str:
    """A hash of the cookie policy and the third parties: a change asks consent again."""
    if parties is None:
        parties = effective_third_parties()
    described = {
        "text": BANNER_TEXT,
        "cookies": [(c.name, c.category, c.purpose) for c in own_cookies()],
        "parties": sorted(
            (p.name, p.category, p.purpose, p.data_received, p.host)
            for p in parties
            # A service provider on the servers' side is no cookie choice.
            if not p.is_server_side
        ),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ConsentState:
    version: str
    chosen: bool = False  # a valid choice for the current version exists
    consent_id: str = ""
    chosen_categories: frozenset[str] = frozenset()
    signal: str = ""  # "dnt", "gpc" or ""
    parties: list[ThirdParty] = field(default_factory=list)

    @property
    def allowed(self) -> frozenset[str]:
        """The categories this request may use: necessary, plus what was chosen, minus
        tracking when a signal says no."""
        allowed = {Category.NECESSARY.value, *self.chosen_categories}
        if self.signal:
            allowed -= {c.value for c in TRACKING}
        return frozenset(allowed)

    def allows(self, category: str) -> bool:
        return category in self.allowed

    @property
    def show_banner(self) -> bool:
        return not self.chosen

    @property
    def tags(self) -> list[ThirdParty]:
        """Third-party scripts to render: none under DNT/GPC (P28), else consented ones."""
        if self.signal:
            return []
        return [p for p in self.parties if p.script_src and self.allows(p.category)]


def browser_signal(request: HttpRequest) -> str:
    if request.headers.get("Sec-GPC", "").strip() == "1":
        return "gpc"
    if request.headers.get("DNT", "").strip() == "1":
        return "dnt"
    return ""


def decode_choice(raw: str | None, version: str) -> tuple[str, frozenset[str]] | None:
    """The consent id and categories in a cookie, or None for anything not a valid
    choice for this banner version (forged, garbled, oversized, old, unknown category)."""
    if not raw or len(raw) > MAX_COOKIE_LENGTH:
        return None
    try:
        data = signing.loads(raw, salt=SALT, max_age=CONSENT_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("v") != version:
        return None
    consent_id, categories = data.get("id"), data.get("c")
    if not isinstance(consent_id, str) or not isinstance(categories, list):
        return None
    try:
        uuid.UUID(consent_id)
    except ValueError:
        return None
    known = {c.value for c in OPTIONAL}
    if not all(isinstance(c, str) and c in known for c in categories):
        return None
    return consent_id, frozenset(categories)


def encode_choice(consent_id: str, categories: list[str], version: str) -> str:
    return signing.dumps({"id": consent_id, "c": sorted(categories), "v": version}, salt=SALT)


def read_state(request: HttpRequest) -> ConsentState:
    parties = effective_third_parties()
    version = banner_version(parties)
    signal = browser_signal(request)
    choice = decode_choice(request.COOKIES.get(CONSENT_COOKIE), version)
    if choice is None:
        return ConsentState(version=version, signal=signal, parties=parties)
    consent_id, categories = choice
    return ConsentState(
        version=version,
        chosen=True,
        consent_id=consent_id,
        chosen_categories=categories,
        signal=signal,
        parties=parties,
    )
