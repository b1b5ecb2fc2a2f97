"""Cookie choices decided on the server (P22, P28, P29): banner, cookie, proof, signals."""

from __future__ import annotations

import uuid

import pytest
from django.core import signing

from tidings.consent.cookies import CONSENT_COOKIE
from tidings.consent.models import ConsentRecord, ThirdParty
from tidings.consent.services import announce_third_party, truncate_ip
from tidings.consent.state import SALT, banner_version, encode_choice

BANNER = "Cookie choices"
ALL = ["advertising", "analytics", "preferences", "support"]


def choose(client, choice, categories=(), **extra):  # type: ignore[no-untyped-def]
    data = {"choice": choice, "category": list(categories), "next": "/"}
    return client.post("/cookies/", data, **extra)


def stored(client) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return signing.loads(client.cookies[CONSENT_COOKIE].value, salt=SALT)


@pytest.mark.promise("P22", "P29")
def test_before_a_choice_the_banner_shows_and_no_cookie_is_set(client, db):
    response = client.get("/")
    assert BANNER in response.content.decode()
    assert not response.cookies
    assert ConsentRecord.objects.count() == 0


@pytest.mark.promise("P22")
def test_banner_offers_refuse_and_accept_as_equal_buttons_in_a_plain_form(client, db):
    html = client.get("/").content.decode()
    assert 'aria-labelledby="consent-banner-h"' in html
    assert 'action="/cookies/"' in html and 'method="post"' in html
    refuse = '<button type="submit" name="choice" value="refuse" class="button">Refuse all</button>'
    accept = '<button type="submit" name="choice" value="accept" class="button">Accept all</button>'
    assert refuse in html and accept in html
    for category in ALL:
        assert f'name="category" value="{category}"' in html


@pytest.mark.promise("P22")
def test_refusing_all_stores_proof_and_a_signed_cookie_with_nothing_allowed(client, db):
    response = choose(client, "refuse", REMOTE_ADDR="203.0.113.77")
    assert response.status_code == 302 and response["Location"] == "/"
    cookie = response.cookies[CONSENT_COOKIE]
    assert cookie["samesite"] == "Lax" and cookie["httponly"]
    assert int(cookie["max-age"]) == 183 * 24 * 3600
    record = ConsentRecord.objects.get()
    assert record.categories == [] and record.method == "banner"
    assert record.ip_network == "203.0.113.0/24"
    assert record.banner_version == banner_version()
    assert stored(client) == {"id": str(record.consent_id), "c": [], "v": banner_version()}
    assert BANNER not in client.get("/").content.decode()


@pytest.mark.promise("P22")
def test_accepting_all_allows_every_category_and_withdrawing_is_one_click(client, db):
    choose(client, "accept")
    assert stored(client)["c"] == ALL
    first = ConsentRecord.objects.get()
    choose(client, "refuse")
    assert stored(client)["c"] == []
    latest = ConsentRecord.objects.order_by("-pk").first()
    assert latest is not None and latest.categories == []
    # The same anonymous id: the withdrawal is provably about the earlier consent.
    assert latest.consent_id == first.consent_id


@pytest.mark.promise("P22")
def test_choosing_per_category_allows_only_those(client, db):
    choose(client, "save", ["analytics"])
    assert stored(client)["c"] == ["analytics"]
    assert ConsentRecord.objects.get().categories == ["analytics"]


@pytest.mark.promise("P22")
def test_settings_page_reopens_the_choice_and_records_its_method(client, db):
    choose(client, "accept")
    page = client.get("/cookies/").content.decode()
    assert "You allowed" in page and "Refuse all" in page
    client.post("/cookies/", {"choice": "refuse", "from": "settings"})
    assert ConsentRecord.objects.order_by("-pk").first().method == "settings"  # type: ignore[union-attr]


def test_the_settings_page_before_a_choice_shows_its_form_once_without_the_banner(client, db):
    page = client.get("/cookies/").content.decode()
    assert 'aria-labelledby="consent-banner-h"' not in page
    assert page.count(">Refuse all</button>") == 1
    assert "You have not made a choice yet" in page


@pytest.mark.promise("P22")
def test_footer_links_to_cookie_settings_on_every_page(client, db):
    for url in ("/", "/privacy/", "/contact/", "/login/", "/cookies/"):
        assert 'href="/cookies/">Cookie settings</a>' in client.get(url).content.decode(), url


@pytest.mark.parametrize(
    "data",
    [
        {"choice": "save", "category": ["analytics", "tracking-pixels"]},
        {"choice": "save", "category": ["necessary"]},
        {"choice": "everything"},
        {},
    ],
)
def test_an_unknown_choice_or_category_is_refused_and_changes_nothing(client, db, data):
    response = client.post("/cookies/", data)
    assert response.status_code == 400
    assert CONSENT_COOKIE not in response.cookies
    assert ConsentRecord.objects.count() == 0


def test_a_choice_posted_from_another_site_is_refused(client, db):
    response = choose(client, "accept", HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    assert ConsentRecord.objects.count() == 0 and not response.cookies


def test_a_redirect_elsewhere_after_the_choice_is_ignored(client, db):
    response = client.post("/cookies/", {"choice": "refuse", "next": "https://evil.example/"})
    assert response["Location"] == "/cookies/"


def forge(client, value: str) -> None:  # type: ignore[no-untyped-def]
    client.cookies[CONSENT_COOKIE] = value


@pytest.mark.promise("P22")
@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        signing.dumps({"id": str(uuid.uuid4()), "c": ALL, "v": "x"}, salt="another salt"),
        "x" * 5000,
        "",
    ],
)
def test_a_forged_garbled_or_oversized_cookie_counts_as_no_choice(client, db, value):
    forge(client, value)
    response = client.get("/")
    assert BANNER in response.content.decode()
    assert not response.cookies
    assert ConsentRecord.objects.count() == 0


@pytest.mark.promise("P22")
def test_a_signed_cookie_naming_an_unknown_category_counts_as_no_choice(client, db):
    forge(client, encode_choice(str(uuid.uuid4()), ["analytics", "tracking"], banner_version()))
    assert BANNER in client.get("/").content.decode()


@pytest.mark.promise("P22")
def test_a_new_third_party_in_effect_asks_for_consent_again(client, db):
    choose(client, "accept")
    assert BANNER not in client.get("/").content.decode()
    announce_third_party(
        name="Counter",
        category="analytics",
        purpose="audience measurement",
        data_received="pages viewed",
        policy_url="https://counter.example/privacy",
    )
    # Announced but not in effect: nothing changes for the visitor yet.
    assert BANNER not in client.get("/").content.decode()

    ThirdParty.objects.update(effective_at=ThirdParty.objects.get().added_at)
    assert BANNER in client.get("/").content.decode()


@pytest.mark.promise("P28")
@pytest.mark.parametrize(
    ("header", "name", "method"),
    [("HTTP_DNT", "Do Not Track", "dnt"), ("HTTP_SEC_GPC", "Global Privacy Control", "gpc")],
)
def test_dnt_and_gpc_refuse_tracking_whatever_is_chosen_and_the_banner_says_so(
    client, db, header, name, method
):
    assert f"{name} signal. We honour it" in client.get("/", **{header: "1"}).content.decode()
    choose(client, "accept", **{header: "1"})
    record = ConsentRecord.objects.get()
    assert record.categories == ["preferences", "support"]
    assert record.method == method
    assert "analytics" not in stored(client)["c"]


@pytest.mark.promise("P28")
def test_a_signal_overrides_an_earlier_consent_to_analytics(client, db):
    choose(client, "accept")
    response = client.get("/", HTTP_SEC_GPC="1")
    state = response.wsgi_request.consent  # type: ignore[attr-defined]
    assert not state.allows("analytics") and not state.allows("advertising")
    assert state.allows("preferences")
    assert not client.get("/").wsgi_request.consent.signal  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("198.51.100.23", "198.51.100.0/24"),
        ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::/48"),
        ("::ffff:192.0.2.9", "192.0.2.0/24"),
        ("not an address", ""),
    ],
)
def test_ip_addresses_are_kept_only_as_their_network(address, network):
    assert truncate_ip(address) == network


@pytest.mark.promise("P22")
def test_a_logged_in_customers_choice_is_linked_and_shown_in_my_account(client, customer):
    client.force_login(customer)
    choose(client, "save", ["preferences"], HTTP_USER_AGENT="Mozilla/5.0 Firefox/140.0")
    record = ConsentRecord.objects.get()
    assert record.user == customer and record.browser == "Firefox"
    page = client.get("/account/").content.decode()
    assert "Cookie choices" in page and str(record.consent_id) in page


def test_another_customers_choice_is_not_in_my_account(client, customer, other_customer):
    client.force_login(other_customer)
    choose(client, "accept")
    client.force_login(customer)
    record = ConsentRecord.objects.get()
    assert str(record.consent_id) not in client.get("/account/").content.decode()
