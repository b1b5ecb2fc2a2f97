"""Third parties (P24, P27): announced before they take effect, tags only with consent."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from tests.factories import UserFactory
from tidings.consent.models import ThirdParty
from tidings.consent.services import ThirdPartyRejected, announce_third_party

TAG = "https://analytics.example.test/t.js"
START = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)


def announce(**overrides):  # type: ignore[no-untyped-def]
    fields = {
        "name": "Example Analytics",
        "category": "analytics",
        "purpose": "counting visits",
        "data_received": "pages viewed and IP address",
        "policy_url": "https://analytics.example.test/privacy",
        "opt_out_url": "https://analytics.example.test/opt-out",
        "script_src": TAG,
        **overrides,
    }
    return announce_third_party(**fields)


def accept(client, categories):  # type: ignore[no-untyped-def]
    client.post("/cookies/", {"choice": "save", "category": categories})


@pytest.mark.promise("P24")
def test_announcement_mails_every_active_customer_once_and_waits_the_notice_period(
    mailbox, settings
):
    settings.CONSENT_NOTICE_DAYS = 30
    ada = UserFactory(email="ada@example.org")
    UserFactory(email="unconfirmed@example.org", email_confirmed_at=None)
    UserFactory(email="gone@example.org", is_active=False)
    with time_machine.travel(START):
        party = announce()
        again = announce(purpose="something else")
    assert again.pk == party.pk and again.purpose == "counting visits"
    assert party.effective_at == START + dt.timedelta(days=30)
    assert [m.to for m in mailbox] == [[ada.email]]
    assert "from 31 March 2026: Example Analytics" in mailbox[0].subject
    assert "counting visits" in mailbox[0].body


@pytest.mark.promise("P24")
def test_notice_period_is_configurable(db, settings):
    settings.CONSENT_NOTICE_DAYS = 45
    with time_machine.travel(START):
        party = announce()
    assert party.effective_at == START + dt.timedelta(days=45)


@pytest.mark.promise("P24", "P27")
def test_announced_party_is_upcoming_not_rendered_until_it_takes_effect(client, customer):
    with time_machine.travel(START):
        announce()
    accept(client, ["analytics"])
    client.force_login(customer)
    with time_machine.travel(START + dt.timedelta(days=10)):
        page = client.get("/account/").content.decode()
        assert TAG not in page
        # The in-app notice on logged-in pages until it takes effect.
        assert "From 31 March 2026, Example Analytics" in page
        listing = client.get("/subprocessors/").content.decode()
        assert "upcoming, from 2026-03-31" in listing
    with time_machine.travel(START + dt.timedelta(days=31)):
        accept(client, ["analytics"])  # the list changed: consent is asked again
        client.force_login(customer)  # three weeks later: the session idled out
        page = client.get("/account/").content.decode()
        assert f'<script src="{TAG}" async></script>' in page
        assert "From 31 March 2026" not in page
        assert "upcoming, from" not in client.get("/subprocessors/").content.decode()


@pytest.mark.promise("P27")
@pytest.mark.parametrize(
    ("categories", "headers", "rendered"),
    [
        ([], {}, False),
        (["preferences", "support"], {}, False),
        (["analytics"], {}, True),
        (["analytics"], {"HTTP_DNT": "1"}, False),
        (["analytics"], {"HTTP_SEC_GPC": "1"}, False),
    ],
)
def test_tag_renders_only_when_its_category_is_allowed(client, db, categories, headers, rendered):
    with time_machine.travel(START - dt.timedelta(days=60)):
        announce()
    accept(client, categories)
    assert (TAG in client.get("/", **headers).content.decode()) is rendered


@pytest.mark.promise("P27")
def test_no_tag_before_any_choice_and_none_once_switched_off(client, db):
    with time_machine.travel(START - dt.timedelta(days=60)):
        party = announce()
    assert TAG not in client.get("/").content.decode()
    accept(client, ["analytics"])
    assert TAG in client.get("/").content.decode()
    ThirdParty.objects.filter(pk=party.pk).update(active=False)
    assert TAG not in client.get("/").content.decode()


@pytest.mark.promise("P27")
def test_cookie_page_lists_own_cookies_and_third_parties_with_purpose_and_opt_out(client, db):
    with time_machine.travel(START - dt.timedelta(days=60)):
        announce()
    page = client.get("/cookies/").content.decode()
    for name in ("sessionid", "csrftoken", "messages", "tidings_consent"):
        assert f"<code>{name}</code>" in page
    assert "6 months" in page
    assert "Example Analytics" in page and "counting visits" in page
    assert 'href="https://analytics.example.test/opt-out"' in page


@pytest.mark.parametrize(
    "overrides",
    [
        {"category": "tracking"},
        {"script_src": "http://analytics.example.test/t.js"},
        {"script_src": "javascript:alert(1)"},
        {"policy_url": "not a url"},
    ],
)
def test_a_bad_third_party_is_refused_and_nothing_is_announced(mailbox, overrides):
    UserFactory()
    with pytest.raises(ThirdPartyRejected):
        announce(**overrides)
    assert ThirdParty.objects.count() == 0
    assert mailbox == []


@pytest.mark.promise("P28")
def test_gpc_well_known_resource(client, db):
    response = client.get("/.well-known/gpc.json")
    assert response.status_code == 200
    body = response.json()
    assert body["gpc"] is True
    assert dt.date.fromisoformat(body["lastUpdate"])
    assert not response.cookies
