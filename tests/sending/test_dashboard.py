"""The dashboard a customer lands on after logging in: the audience's growth over 30 or
90 days, the last campaigns with their rates, what is sending now with the reasons it
paused or failed, and the contacts' requests that are due."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD, campaign_status
from tidings.audience import mailing_lists, rights
from tidings.audience import services as audience
from tidings.campaigns.models import Campaign
from tidings.sending import tokens, tracking
from tidings.sending.models import Delivery

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("sending:dashboard")


def test_a_customer_lands_on_the_dashboard_after_logging_in(client, customer):
    response = client.post(
        reverse("accounts:login"), {"username": customer.email, "password": PASSWORD}
    )
    assert response.status_code == 302 and response.url == DASHBOARD
    page = client.get(DASHBOARD).content.decode()
    assert "<h1>Dashboard</h1>" in page and "Audience growth" in page
    assert f'href="{DASHBOARD}"' in page  # in the main navigation


def test_staff_without_an_account_are_sent_to_my_account(client, staff):
    client.force_login(staff)
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response.url == reverse("accounts:my_account")


def test_the_dashboard_needs_a_login(client, db):
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))


def growth_figures(page: str) -> dict[str, object]:
    data = re.search(r'<script id="growth-data" type="application/json">(.*?)</script>', page)
    assert data, page
    return json.loads(data.group(1))


def test_growth_over_30_or_90_days_in_figures_a_chart_and_a_table(client, customer):
    account = customer.account
    news = mailing_lists.save_list(account, name="News", optin="single")
    with time_machine.travel(timezone.now() - timedelta(days=40), tick=False):
        audience.add_contact(account, "early@example.org", lists=[news])
    ada = audience.add_contact(account, "ada@example.org", lists=[news])
    audience.add_contact(account, "bob@example.org", lists=[news])
    audience.unsubscribe(ada)
    client.force_login(customer)

    page = client.get(DASHBOARD).content.decode()
    assert re.search(r'id="growth-subscribed">.*?<span class="rate">\+2</span>', page)
    assert re.search(r'id="growth-unsubscribed">.*?<span class="rate">\u22121</span>', page)
    assert re.search(r'id="growth-now">.*?<span class="rate">2</span>', page)  # early, bob
    chart = growth_figures(page)
    assert len(chart["labels"]) == 30  # type: ignore[arg-type]
    subscribed, left = chart["datasets"]  # type: ignore[misc]
    assert subscribed["data"][-1] == 2 and left["data"][-1] == 1 and sum(subscribed["data"]) == 2

    page = client.get(DASHBOARD + "?days=90").content.decode()
    chart = growth_figures(page)
    assert len(chart["labels"]) == 90 and sum(chart["datasets"][0]["data"]) == 3  # type: ignore[index,arg-type]
    assert re.search(r'id="growth-net">.*?<span class="rate">\+2</span>', page)
    # Anything but 90 is the 30 days: nothing else is read from the address.
    chart = growth_figures(client.get(DASHBOARD + "?days=9999").content.decode())
    assert len(chart["labels"]) == 30  # type: ignore[arg-type]


def test_no_inline_script_only_first_party_files_and_json(client, customer):
    client.force_login(customer)
    page = client.get(DASHBOARD).content.decode()
    for tag in re.findall(r"<script[^>]*>", page):
        assert 'src="/static/' in tag or 'type="application/json"' in tag, tag
    assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in page


def test_what_is_sending_now_and_why_it_paused_or_failed(client, customer):
    account = customer.account
    news = mailing_lists.save_list(account, name="News", optin="single")
    contacts = [audience.add_contact(account, f"r{i}@example.org", lists=[news]) for i in range(3)]
    now = timezone.now()
    going = Campaign.objects.create(
        account=account, name="Going out", subject="s", from_email="a@b.example",
        status="sending", started_at=now,
    )  # fmt: skip
    paused = Campaign.objects.create(
        account=account, name="Held back", subject="s", from_email="a@b.example",
        status="paused", started_at=now, pause_reason="The relay refused the login (535).",
    )  # fmt: skip
    Delivery.objects.create(campaign=going, contact=contacts[0], status="sent", sent_at=now)
    Delivery.objects.create(
        campaign=going, contact=contacts[1], status="failed", last_error="550 mailbox full"
    )
    Delivery.objects.create(campaign=going, contact=contacts[2], status="queued")
    Delivery.objects.create(campaign=paused, contact=contacts[0], status="queued")
    client.force_login(customer)
    page = client.get(DASHBOARD).content.decode()
    section = page.split('id="sending-h"')[1].split("</section>")[0]
    assert "Going out" in section and "Held back" in section
    assert "1 of 3 sent" in section and "1 failed" in section
    assert "550 mailbox full (1)" in section
    assert "Paused: The relay refused the login (535)." in section


def test_the_last_campaigns_with_their_rates(client, customer):
    account = customer.account
    news = mailing_lists.save_list(account, name="News", optin="single")
    contacts = [audience.add_contact(account, f"r{i}@example.org", lists=[news]) for i in range(4)]
    done = Campaign.objects.create(
        account=account, name="Autumn", subject="s", from_email="a@b.example",
        **campaign_status("sent"), started_at=timezone.now(), track_opens=True,
    )  # fmt: skip
    deliveries = [
        Delivery.objects.create(campaign=done, contact=c, status="sent", sent_at=timezone.now())
        for c in contacts
    ]
    tracking.record(tokens.TrackingToken(done.pk, None), "open")
    tracking.count(done.pk, "bounce", 1)
    assert deliveries
    client.force_login(customer)
    page = client.get(DASHBOARD).content.decode()
    table = page.split('id="recent-campaigns"')[1].split("</table>")[0]
    assert reverse("sending:report", args=[done.uuid]) in table
    # 4 sent, 3 delivered, 1 bounce of 4 sent; the account tracks in aggregate only, so
    # opens are events, not people: no open or click rate (it could pass 100 %).
    assert (
        '<td class="num">4</td><td class="num">—</td><td class="num">—</td>'
        '<td class="num">25.0 %</td><td class="num">0.0 %</td>'
    ) in table
    assert "a reader who clicks twice counts twice" in page


def test_the_contacts_requests_that_are_due(client, customer):
    account = customer.account
    asker = audience.add_contact(account, "asker@example.org")
    other = audience.add_contact(account, "other@example.org")
    late, _ = rights.request_from_contact(asker, kind="erasure")
    late.due_at = timezone.now() - timedelta(days=1)
    late.save(update_fields=["due_at"])
    rights.request_from_contact(other, kind="access")
    client.force_login(customer)
    page = client.get(DASHBOARD).content.decode()
    section = page.split('id="requests-h"')[1].split("</section>")[0]
    assert "2 open requests" in section and "1 overdue" in section
    assert section.index("erasure") < section.index("access")  # the soonest due first
    assert reverse("audience:request", args=[late.uuid]) in section


def test_an_empty_account_gets_a_dashboard_with_no_figures_to_divide(client, customer):
    client.force_login(customer)
    page = client.get(DASHBOARD).content.decode()
    assert "Nothing is being sent right now." in page
    assert "No request from your contacts is waiting for an answer." in page
    assert "No campaign sent yet." in page
