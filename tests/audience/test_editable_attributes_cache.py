"""The attribute names contacts may edit, read by every preference page, are kept in the
cache with Redis per account (the account's settings: nothing personal), and every change
through the services, the settings page or a deletion forgets them at once (issue 13's
web load)."""

from __future__ import annotations

import pytest
import redis
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.audience.conftest import path_of
from tidings.audience import links, services, setup
from tidings.audience.models import AudienceSettings


@pytest.fixture
def reader(account, newsletter):  # type: ignore[no-untyped-def]
    return services.add_contact(
        account,
        "reader@example.org",
        attributes={"city": "Ghent", "plan": "pro"},
        lists=[newsletter],
    )


def page(client, reader) -> str:  # type: ignore[no-untyped-def]
    return client.get(path_of(links.preference_url(reader))).content.decode()


def editable(account) -> list[str]:  # type: ignore[no-untyped-def]
    """Read as a page reads them, from the cache when kept (no statement then)."""
    return services.editable_attributes(account)


def test_they_are_read_once_then_kept(account):
    setup.set_editable_attributes(account, ["city"])
    assert editable(account) == ["city"]
    with CaptureQueriesContext(connection) as statements:
        assert editable(account) == ["city"]
    assert not statements.captured_queries


def test_without_redis_they_are_read_at_each_page(account, settings):
    setup.set_editable_attributes(account, ["city"])
    settings.REDIS_URL = ""
    editable(account)
    with CaptureQueriesContext(connection) as statements:
        assert editable(account) == ["city"]
    assert len(statements.captured_queries) == 1


def test_a_change_through_the_service_shows_on_the_next_page(client, account, reader):
    assert 'name="attr:city"' not in page(client, reader)  # none editable: kept so
    setup.set_editable_attributes(account, ["city"])
    assert 'name="attr:city"' in page(client, reader)
    setup.set_editable_attributes(account, ["plan"])
    shown = page(client, reader)
    assert 'name="attr:plan"' in shown and 'name="attr:city"' not in shown


def test_what_the_contact_may_save_follows_at_once(client, account, reader):
    setup.set_editable_attributes(account, ["city"])
    assert editable(account) == ["city"]
    setup.set_editable_attributes(account, [])
    client.post(path_of(links.preference_url(reader)), {"action": "save", "attr:city": "Paris"})
    reader.refresh_from_db()
    assert reader.attributes["city"] == "Ghent"


def test_the_settings_page_forgets_them(client, customer, account):
    client.force_login(customer)
    assert editable(account) == []
    response = client.post(
        "/audience/settings/", {"editable_attributes": "city, plan", "contact_sender": ""}
    )
    assert response.status_code == 302
    assert editable(account) == ["city", "plan"]


def test_the_contact_sender_change_keeps_them_true(account):
    setup.set_editable_attributes(account, ["city"])
    assert editable(account) == ["city"]
    setup.set_contact_sender(account, "news@example.org")
    assert editable(account) == ["city"]


def test_a_save_or_a_deletion_of_the_settings_forgets_them(account):
    setup.set_editable_attributes(account, ["city"])
    assert editable(account) == ["city"]
    row = AudienceSettings.objects.get(account=account)
    row.editable_attributes = ["plan"]
    row.save()
    assert editable(account) == ["plan"]
    AudienceSettings.objects.filter(account=account).delete()
    assert editable(account) == []


def test_one_accounts_names_are_not_anothers(account, other_customer):
    other_account = other_customer.account
    setup.set_editable_attributes(account, ["city"])
    assert editable(account) == ["city"]
    assert editable(other_account) == []


def test_with_redis_away_the_page_reads_the_database_and_saves_go_on(account, monkeypatch):
    setup.set_editable_attributes(account, ["city"])
    assert editable(account) == ["city"]

    def away(*args: object, **kwargs: object) -> None:
        raise redis.ConnectionError("Redis is away")

    for name in ("get", "set", "delete"):
        monkeypatch.setattr(cache, name, away)
    setup.set_editable_attributes(account, ["plan"])
    assert editable(account) == ["plan"]
