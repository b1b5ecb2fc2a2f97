"""The third parties every page reads (the cookie banner's version and tags) are kept in
the cache with Redis, and every way a party is written forgets them at once (issue 13's
web load): a party switched off stops at once, a new one is asked about at once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import redis
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tidings.consent.admin import ThirdPartyAdmin
from tidings.consent.models import ThirdParty
from tidings.consent.services import (
    announce_third_party,
    set_third_party_active,
    upcoming_third_parties,
)
from tidings.consent.state import effective_third_parties
from tidings.staff.admin_site import site

pytestmark = pytest.mark.django_db

PAST = timezone.now() - dt.timedelta(days=60)


def party(name: str = "Example Analytics", **fields: Any) -> ThirdParty:
    values = {
        "name": name,
        "category": "analytics",
        "purpose": "counting visits",
        "data_received": "pages viewed",
        "policy_url": "https://analytics.example.test/privacy",
        "script_src": "https://analytics.example.test/t.js",
        "added_at": PAST,
        "effective_at": PAST + dt.timedelta(days=30),
    }
    return ThirdParty(**(values | fields))


def names() -> list[str]:
    return [p.name for p in effective_third_parties()]


def kept() -> list[str]:
    """What the banner reads now, read from the cache (no statement)."""
    with CaptureQueriesContext(connection) as statements:
        found = names()
    assert not statements.captured_queries, "read from the database, not the cache"
    return found


@pytest.fixture
def known() -> ThirdParty:
    saved = party()
    saved.save()
    assert names() == ["Example Analytics"]  # now kept
    assert kept() == ["Example Analytics"]
    return saved


def test_the_parties_are_read_once_and_kept(known):
    assert kept() == kept() == ["Example Analytics"]


def test_without_redis_they_are_read_at_each_page(known, settings):
    settings.REDIS_URL = ""
    with CaptureQueriesContext(connection) as statements:
        assert names() == ["Example Analytics"]
    assert len(statements.captured_queries) == 1


def test_announcing_forgets_them(known, settings):
    settings.CONSENT_NOTICE_DAYS = 30
    announce_third_party(
        name="Support Chat",
        category="support",
        purpose="chat",
        data_received="messages",
        policy_url="https://chat.example.test/privacy",
        now=PAST,
    )
    assert names() == ["Example Analytics", "Support Chat"]


def test_switching_off_through_the_service_forgets_them(known):
    set_third_party_active(known, active=False)
    assert names() == []


def test_switching_off_in_the_console_forgets_them(known, rf, staff):
    request = rf.post("/")
    request.user = staff
    known.active = False
    ThirdPartyAdmin(ThirdParty, site).save_model(request, known, None, change=True)
    assert names() == []


def test_a_save_forgets_them(known):
    known.name = "Renamed Analytics"
    known.save()
    assert names() == ["Renamed Analytics"]
    ThirdParty.objects.create(
        **{f: getattr(party("Second"), f) for f in ("name", "category", "purpose")},
        data_received="x",
        policy_url="https://second.example.test/",
        added_at=PAST,
        effective_at=PAST + dt.timedelta(days=30),
    )
    assert names() == ["Renamed Analytics", "Second"]


def test_an_update_in_bulk_forgets_them(known):
    ThirdParty.objects.filter(pk=known.pk).update(active=False)
    assert names() == []
    ThirdParty.objects.update(active=True)
    assert names() == ["Example Analytics"]


def test_a_bulk_create_and_a_bulk_update_forget_them(known):
    ThirdParty.objects.bulk_create([party("Second")])
    assert names() == ["Example Analytics", "Second"]
    known.active = False
    ThirdParty.objects.bulk_update([known], ["active"])
    assert names() == ["Second"]


def test_a_delete_forgets_them(known):
    known.delete()
    assert names() == []
    party("Second").save()
    assert names() == ["Second"]
    ThirdParty.objects.filter(name="Second").delete()
    assert names() == []


def test_a_party_takes_effect_at_its_date_while_kept(known, settings):
    """Kept are the active parties, announced or in effect: the date is compared at each
    read, and the in-app notice of those to come reads the same."""
    upcoming = party("Coming", effective_at=timezone.now() + dt.timedelta(days=1))
    upcoming.added_at = upcoming.effective_at - dt.timedelta(days=30)
    upcoming.save()
    assert names() == ["Example Analytics"]
    assert [p.name for p in upcoming_third_parties()] == ["Coming"]
    later = timezone.now() + dt.timedelta(days=2)
    assert [p.name for p in effective_third_parties(later)] == ["Example Analytics", "Coming"]


def test_with_redis_away_pages_read_the_database_and_writes_go_on(known, monkeypatch):
    def away(*args: Any, **kwargs: Any) -> None:
        raise redis.ConnectionError("Redis is away")

    monkeypatch.setattr(cache, "get", away)
    monkeypatch.setattr(cache, "delete", away)
    set_third_party_active(known, active=False)
    assert names() == []
