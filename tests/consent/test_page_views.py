"""Our own aggregate page views (P26): counters, no cookie, no IP, no visitor id."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from tests.factories import StaffFactory
from tidings.accounts.models import User
from tidings.audience import links, services
from tidings.consent.models import PageView
from tidings.core import datamap


@pytest.mark.promise("P26")
def test_html_pages_are_counted_per_day_and_path_without_query_string(client, db):
    with time_machine.travel(dt.datetime(2026, 5, 4, 12, tzinfo=dt.UTC)):
        client.get("/")
        client.get("/?utm_source=mail")
        response = client.get("/privacy/")
    assert not response.cookies
    counts = {(v.day, v.path): v.count for v in PageView.objects.all()}
    assert counts == {(dt.date(2026, 5, 4), "/"): 2, (dt.date(2026, 5, 4), "/privacy/"): 1}


@pytest.mark.promise("P26")
def test_errors_posts_assets_staff_and_api_are_not_counted(client, db):
    client.get("/no-such-page/")
    client.post("/cookies/", {"choice": "refuse"})
    client.get("/.well-known/gpc.json")
    client.get("/staff/admin/login/")
    client.get("/api/v1/docs")
    client.get("/static/tidings.css")
    assert PageView.objects.count() == 0


@pytest.mark.promise("P26")
def test_page_views_hold_no_personal_data():
    assert datamap.is_declared_free(PageView)
    names = {f.name for f in PageView._meta.get_fields()}
    assert names == {"id", "day", "path", "count"}


@pytest.mark.promise("P26")
def test_staff_page_shows_counts_to_admins_only(client, db, settings):
    settings.STAFF_REQUIRE_2FA = False
    client.get("/")
    client.get("/")
    support = StaffFactory(email="support@operator.example")
    client.force_login(support)
    assert client.get("/staff/page-views/").status_code == 403
    admin = StaffFactory(email="admin@operator.example", staff_role=User.StaffRole.ADMIN)
    client.force_login(admin)
    page = client.get("/staff/page-views/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<td>/</td><td>2</td>" in html


@pytest.mark.promise("P26")
def test_a_contacts_own_link_is_counted_by_its_route_without_the_token(client, customer):
    """The token in a preference link says who the contact is: the counter must not
    keep it, nor grow a row per contact."""
    tokens = []
    for email in ("one@example.org", "two@example.org"):
        contact = services.add_contact(customer.account, email)
        path = links.preference_url(contact).split("://", 1)[1].split("/", 1)[1]
        tokens.append(path.split("/")[1])
        assert client.get(f"/{path}").status_code == 200
    assert {(v.path, v.count) for v in PageView.objects.all()} == {("/p/<str:token>/", 2)}
    assert not any(t in v.path for v in PageView.objects.all() for t in tokens)
