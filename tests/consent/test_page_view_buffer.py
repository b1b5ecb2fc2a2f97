"""Page views counted in Redis and written by a worker task (P26, issue 13's web load):
the counts written equal the views made, exactly once, whatever point a flush is killed
at."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import redis
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import StaffFactory
from tidings.accounts.models import User
from tidings.consent import services
from tidings.consent.models import PageView, PageViewFlush
from tidings.core.sharedredis import shared_redis

DAY = dt.date(2026, 5, 4)


@pytest.fixture
def buffered(settings: Any) -> Any:
    settings.PAGE_VIEW_BUFFER = True
    return shared_redis()


def counts() -> dict[tuple[dt.date, str], int]:
    return {(v.day, v.path): v.count for v in PageView.objects.all()}


class Killed(Exception):
    """The flush's process dies here."""


@pytest.mark.promise("P26")
def test_a_view_writes_nothing_in_the_request_and_the_flush_writes_each_once(client, db, buffered):
    with time_machine.travel(dt.datetime(2026, 5, 4, 12, tzinfo=dt.UTC)):
        with CaptureQueriesContext(connection) as statements:
            client.get("/")
        assert not [q for q in statements.captured_queries if "pageview" in q["sql"]]
        client.get("/?utm_source=mail")
        client.get("/privacy/")
    assert counts() == {}
    assert services.flush_page_views() == 3
    assert counts() == {(DAY, "/"): 2, (DAY, "/privacy/"): 1}
    # Nothing is left to write: a second flush adds nothing.
    assert services.flush_page_views() == 0
    assert counts() == {(DAY, "/"): 2, (DAY, "/privacy/"): 1}
    assert not buffered.exists(services.PAGE_VIEWS, services.PAGE_VIEW_BATCHES)


@pytest.mark.promise("P26")
def test_views_on_two_days_and_later_views_are_added_to_the_written_counts(db, buffered):
    for _ in range(4):
        services.count_page_view("/", day=DAY)
    services.count_page_view("/", day=DAY + dt.timedelta(days=1))
    services.flush_page_views()
    services.count_page_view("/", day=DAY)
    services.flush_page_views()
    assert counts() == {(DAY, "/"): 5, (DAY + dt.timedelta(days=1), "/"): 1}


@pytest.mark.promise("P26")
def test_a_flush_killed_between_its_read_and_its_commit_loses_nothing(db, buffered, monkeypatch):
    for _ in range(3):
        services.count_page_view("/", day=DAY)

    def killed(counts: Any) -> None:
        raise Killed

    monkeypatch.setattr(services, "_add_page_views", killed)
    with pytest.raises(Killed):
        services.flush_page_views()
    monkeypatch.undo()
    assert counts() == {} and not PageViewFlush.objects.exists()
    # Views made meanwhile go to a new live hash; the next flush writes both.
    services.count_page_view("/", day=DAY)
    assert services.flush_page_views() == 4
    assert counts() == {(DAY, "/"): 4}
    assert services.flush_page_views() == 0 and counts() == {(DAY, "/"): 4}


@pytest.mark.promise("P26")
def test_a_flush_killed_after_its_commit_counts_nothing_twice(db, buffered, monkeypatch):
    for _ in range(3):
        services.count_page_view("/", day=DAY)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise Killed

    # Dies once its batch is committed, before the batch is deleted from Redis.
    monkeypatch.setattr(buffered, "pipeline", killed)
    with pytest.raises(Killed):
        services.flush_page_views()
    monkeypatch.undo()
    assert counts() == {(DAY, "/"): 3}
    assert buffered.scard(services.PAGE_VIEW_BATCHES) == 1
    services.count_page_view("/", day=DAY)
    # The batch left behind is marked written: only deleted; the new view is written.
    assert services.flush_page_views() == 1
    assert counts() == {(DAY, "/"): 4}
    assert not buffered.exists(services.PAGE_VIEW_BATCHES)


@pytest.mark.promise("P26")
def test_two_flushes_of_one_batch_write_it_once(db, buffered):
    """A second flush that read the batch before the first deleted it (both run at once)
    finds its mark and writes nothing."""
    for _ in range(2):
        services.count_page_view("/", day=DAY)
    buffered.eval(
        services._MOVE_ASIDE,
        3,
        services.PAGE_VIEWS,
        services.PAGE_VIEW_BATCH + "b1",
        services.PAGE_VIEW_BATCHES,
    )
    kept = buffered.hgetall(services.PAGE_VIEW_BATCH + "b1")
    assert services.write_page_view_batch(buffered, services.PAGE_VIEW_BATCH + "b1") == 2
    buffered.hset(services.PAGE_VIEW_BATCH + "b1", mapping=kept)  # as the second read it
    assert services.write_page_view_batch(buffered, services.PAGE_VIEW_BATCH + "b1") == 0
    assert counts() == {(DAY, "/"): 2}


@pytest.mark.promise("P26")
def test_marks_are_kept_a_day(db, buffered):
    services.count_page_view("/", day=DAY)
    with time_machine.travel(dt.datetime(2026, 5, 4, 12, tzinfo=dt.UTC), tick=False):
        services.flush_page_views()
    assert PageViewFlush.objects.count() == 1
    with time_machine.travel(dt.datetime(2026, 5, 5, 13, tzinfo=dt.UTC), tick=False):
        services.flush_page_views()
    assert PageViewFlush.objects.count() == 0


@pytest.mark.promise("P26")
def test_the_staff_page_shows_the_views_not_yet_flushed(client, db, buffered, settings):
    settings.STAFF_REQUIRE_2FA = False
    client.get("/")
    client.get("/")
    admin = StaffFactory(email="admin@operator.example", staff_role=User.StaffRole.ADMIN)
    client.force_login(admin)
    html = client.get("/staff/page-views/").content.decode()
    assert "<td>/</td><td>2</td>" in html


@pytest.mark.promise("P26")
def test_without_redis_each_view_is_written_in_its_request(client, db, settings):
    settings.PAGE_VIEW_BUFFER = True
    settings.REDIS_URL = ""
    services.count_page_view("/", day=DAY)
    services.count_page_view("/", day=DAY)
    assert counts() == {(DAY, "/"): 2}
    assert services.flush_page_views() == 0


@pytest.mark.promise("P26")
def test_with_redis_away_a_view_is_written_in_its_request(db, buffered, monkeypatch):
    def away(*args: Any) -> None:
        raise redis.ConnectionError("Redis is away")

    monkeypatch.setattr(buffered, "hincrby", away)
    services.count_page_view("/", day=DAY)
    assert counts() == {(DAY, "/"): 1}


@pytest.mark.promise("P26")
def test_views_counted_before_the_buffer_was_turned_off_are_still_written(db, buffered, settings):
    services.count_page_view("/", day=DAY)
    settings.PAGE_VIEW_BUFFER = False
    services.count_page_view("/", day=DAY)
    assert counts() == {(DAY, "/"): 1}
    assert services.flush_page_views() == 1
    assert counts() == {(DAY, "/"): 2}
