"""A/B tests through the HTTP API: made from a draft campaign, read with their variants
and figures (rates, 95 % intervals, the test against the best), started, and the winner
chosen; another account's test is a 404 and bad input a 422, with nothing written."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from tests.sending.conftest import add_contacts
from tidings.audience.models import MailingList
from tidings.automations.models import SplitTest
from tidings.campaigns.models import Campaign
from tidings.sending import services as sending
from tidings.sending import tokens, tracking
from tidings.sending.models import Delivery


@pytest.fixture
def campaign(customer):  # type: ignore[no-untyped-def]
    account = customer.account
    sending.set_postal_address(account, "12 Baker Lane, 1000 Brussels, Belgium", by=customer)
    news = MailingList.objects.create(account=account, name="News")
    add_contacts(account, news, 20)
    campaign = Campaign.objects.create(
        account=account, name="November", subject="News", from_email="news@news.example.org",
        body="<p>Hello {{ contact.name }}</p>", track_opens=True,
    )  # fmt: skip
    campaign.lists.add(news)
    return campaign


def test_a_test_is_made_started_read_with_its_figures_and_decided(api, customer, campaign, mailbox):
    sending.set_tracking(customer.account, "contact")
    made = api("post", "/ab-tests", {
        "campaign": str(campaign.uuid), "kind": "from_name", "from_names": ["Ann at News"],
        "test_percent": 50, "metric": "manual",
    })  # fmt: skip
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["status"] == "draft" and body["kind"] == "from_name"
    assert [(v["label"], v["from_name"]) for v in body["variants"]] == [
        ("A", ""), ("B", "Ann at News"),
    ]  # fmt: skip
    path = f"/ab-tests/{body['uuid']}"
    started = api("post", f"{path}/start")
    assert started.status_code == 200 and started.json()["status"] == "testing"
    assert len(mailbox) == 10
    b = Campaign.objects.get(uuid=body["variants"][1]["campaign"])
    for delivery in Delivery.objects.filter(campaign=b)[:4]:
        tracking.record(tokens.TrackingToken(b.pk, delivery.pk), "open")
    read = api("get", path).json()
    a_row, b_row = read["variants"]
    assert (b_row["recipients"], b_row["opened"], b_row["rate"]) == (5, 4, 0.8)
    assert b_row["best"] and b_row["p_value"] is None
    assert a_row["interval_low"] == 0.0 and a_row["interval_high"] == pytest.approx(
        0.4345, abs=1e-4
    )
    # 4/5 against 0/5: z = 0.8 / √(0.4 · 0.6 · 0.4) = 2.582, p = 0.0098
    assert a_row["p_value"] == pytest.approx(0.0098, abs=1e-4) and a_row["significant"]
    assert "significant" in read["verdict"] and read["per_contact"]
    assert api("post", f"{path}/start").status_code == 409  # once
    chosen = api("post", f"{path}/winner", {"label": "B"})
    assert chosen.status_code == 200, chosen.content
    assert chosen.json()["winner"] == "B" and chosen.json()["status"] == "decided"
    assert len(mailbox) == 20 and set(Counter(m.to[0] for m in mailbox).values()) == {1}
    assert api("post", f"{path}/winner", {"label": "A"}).status_code == 409
    assert len(api("get", "/ab-tests").json()["items"]) == 1


def test_a_test_of_send_time_is_made_and_scheduled(api, campaign, mailbox):
    now = timezone.now()
    times = [(now + timedelta(hours=h)).isoformat() for h in (1, 2, 3)]
    made = api("post", "/ab-tests", {
        "campaign": str(campaign.uuid), "kind": "send_time", "send_times": times,
        "metric": "clicks",
    })  # fmt: skip
    assert made.status_code == 201, made.content
    path = f"/ab-tests/{made.json()['uuid']}"
    started = api("post", f"{path}/start").json()
    assert started["status"] == "timed" and started["test_percent"] == 100
    assert sum(v["recipients"] for v in started["variants"]) == 20 and not mailbox
    assert api("post", f"{path}/winner", {"label": "A"}).status_code == 409


def test_a_test_of_send_time_keeps_its_time_zone(api, campaign):
    """As the web form does: the zone the times were chosen in, which the test's page
    shows them in and the parts' campaigns are scheduled in."""
    paris = ZoneInfo("Europe/Paris")
    times = [(timezone.now() + timedelta(days=d)).astimezone(paris).isoformat() for d in (2, 3)]
    made = api("post", "/ab-tests", {
        "campaign": str(campaign.uuid), "kind": "send_time", "send_times": times,
        "time_zone": "Europe/Paris",
    })  # fmt: skip
    assert made.status_code == 201, made.content
    assert made.json()["time_zone"] == "Europe/Paris"
    assert api("get", f"/ab-tests/{made.json()['uuid']}").json()["time_zone"] == "Europe/Paris"
    assert SplitTest.objects.get().time_zone == "Europe/Paris"
    listed = api("get", "/ab-tests").json()["items"]
    assert [t["time_zone"] for t in listed] == ["Europe/Paris"]
    started = api("post", f"/ab-tests/{made.json()['uuid']}/start")
    assert started.status_code == 200, started.content
    parts = Campaign.objects.filter(account=campaign.account)
    assert {c.schedule_timezone for c in parts} == {"Europe/Paris"} and parts.count() == 2


def test_a_test_of_another_kind_keeps_utc(api, campaign):
    made = api("post", "/ab-tests", {"campaign": str(campaign.uuid), "subjects": ["B"]})
    assert made.status_code == 201 and made.json()["time_zone"] == "UTC"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "europe/paris", "", "Europe/Paris "])
def test_an_unknown_time_zone_is_a_422_that_says_so_and_writes_nothing(api, campaign, zone):
    answer = api("post", "/ab-tests", {
        "campaign": str(campaign.uuid), "kind": "send_time", "time_zone": zone,
        "send_times": ["2030-01-01T09:00:00+01:00", "2030-01-01T18:00:00+01:00"],
    })  # fmt: skip
    assert answer.status_code == 422, answer.content
    assert answer.json()["detail"] == (
        f"time_zone: “{zone}” is not a time zone: give its IANA name, e.g. Europe/Paris."
    )
    assert [e["loc"] for e in answer.json()["errors"]] == [["body", "payload", "time_zone"]]
    assert not SplitTest.objects.exists() and Campaign.objects.count() == 1


def test_another_accounts_test_and_campaign_are_not_found_and_unchanged(
    api, other_api, campaign, mailbox
):
    made = api("post", "/ab-tests", {"campaign": str(campaign.uuid), "subjects": ["B"]}).json()
    path = f"/ab-tests/{made['uuid']}"
    assert other_api("get", path).status_code == 404
    assert other_api("post", f"{path}/start").status_code == 404
    assert other_api("post", f"{path}/winner", {"label": "A"}).status_code == 404
    theirs = other_api("post", "/ab-tests", {"campaign": str(campaign.uuid), "subjects": ["X"]})
    assert theirs.status_code == 404 and theirs.json()["detail"] == "No such campaign."
    assert other_api("get", "/ab-tests").json()["items"] == []
    test = SplitTest.objects.get()
    assert test.status == SplitTest.Status.DRAFT and not mailbox
    assert Campaign.objects.count() == 2


@pytest.mark.parametrize(
    "body",
    [
        {"subjects": []},
        {"subjects": ["b", "c", "d", "e"]},
        {"subjects": ["x" * 301]},
        {"subjects": ["B"], "test_percent": 60},
        {"subjects": ["B"], "wait_hours": 0},
        {"subjects": ["B"], "metric": "luck"},
        {"subjects": ["{% if %}"]},
        {"kind": "colour"},
        {"kind": "from_name", "from_names": ["n" * 201]},
        {"kind": "content", "variants": 5},
        {"kind": "send_time", "send_times": ["2030-01-01T09:00:00"]},
        {"kind": "send_time", "send_times": ["2030-01-01T09:00:00", "2030-01-01T10:00:00"]},
        {"kind": "send_time", "send_times": ["2001-01-01T09:00Z", "2001-01-01T10:00Z"]},
        {"kind": "subject", "subjects": ["B\u0000"]},
        {"campaign": "not a uuid"},
    ],
)
def test_bad_input_is_a_422_and_writes_nothing(api, campaign, body):
    answer = api("post", "/ab-tests", {"campaign": str(campaign.uuid), **body})
    assert answer.status_code == 422, answer.content
    assert answer.json()["detail"]
    assert not SplitTest.objects.exists() and Campaign.objects.count() == 1


def test_a_wrong_label_or_a_test_that_cannot_start_is_refused(api, campaign, mailbox):
    made = api("post", "/ab-tests", {"campaign": str(campaign.uuid), "subjects": ["B"]}).json()
    path = f"/ab-tests/{made['uuid']}"
    assert api("post", f"{path}/winner", {"label": "E"}).status_code == 422
    assert api("post", f"{path}/winner", {"label": "A"}).status_code == 409  # not started
    Campaign.objects.filter(account=campaign.account).update(
        subject=""
    )  # the checklist's blocking rule: no subject
    refused = api("post", f"{path}/start")
    assert refused.status_code == 422 and refused.json()["detail"].startswith("A:")
    assert SplitTest.objects.get().status == SplitTest.Status.DRAFT and not mailbox
