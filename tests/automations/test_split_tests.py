"""A/B tests: each variant to an equal part of a random sample, the winner by what the
account's tracking can count (P26) to everyone else after the wait; nobody mailed twice,
whatever decides twice."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.sending.conftest import add_contacts
from tidings.automations import splittests
from tidings.automations.models import SplitTest
from tidings.automations.splittests import SplitTestError
from tidings.campaigns.models import Campaign
from tidings.sending import tracking
from tidings.sending.models import CampaignStat, Delivery, SendingSettings

READERS = 50


@pytest.fixture
def campaign(account, newsletter):  # type: ignore[no-untyped-def]
    campaign = Campaign.objects.create(
        account=account, name="November", subject="News for {{ contact.first_name }}",
        from_email="news@news.example.org", body="<p>Hello {{ contact.name }}</p>",
        track_opens=True,
    )  # fmt: skip
    campaign.lists.add(newsletter)
    return campaign


def test_the_winner_by_opens_goes_to_everyone_else_and_nobody_twice(
    account, newsletter, campaign, customer, mailbox
):
    add_contacts(account, newsletter, READERS)
    test = splittests.create_test(
        campaign, subjects=["Your November news"], test_percent=20, metric="opens",
        wait_hours=2, by=customer,
    )  # fmt: skip
    now = timezone.now()
    splittests.start_test(test, by=customer, now=now)
    a, b = (v.campaign for v in test.variants.order_by("label"))
    assert Delivery.objects.filter(campaign=a).count() == 5
    assert Delivery.objects.filter(campaign=b).count() == 5
    assert len(mailbox) == 10
    assert Counter(m.subject.startswith("Your November") for m in mailbox) == {True: 5, False: 5}
    tracking.count(b.pk, CampaignStat.Kind.OPEN, 3)
    tracking.count(a.pk, CampaignStat.Kind.OPEN, 1)
    assert splittests.decide_due(now + timedelta(hours=1)) == 0  # not before its time
    assert splittests.decide_due(now + timedelta(hours=2)) == 1
    test.refresh_from_db()
    assert test.status == SplitTest.Status.DECIDED and test.winner == b
    assert "aggregate only" in test.note
    splittests.decide(test)  # a second decision sends nothing more
    assert splittests.decide_due(now + timedelta(hours=3)) == 0
    per_recipient = Counter(m.to[0] for m in mailbox)
    assert len(per_recipient) == READERS and set(per_recipient.values()) == {1}
    assert sum(m.subject == "Your November news" for m in mailbox) == 5 + 40
    for variant in (a, b, test.rest):
        variant.refresh_from_db()
        assert variant.status == Campaign.Status.SENT


@pytest.mark.promise("P26")
def test_what_tracking_cannot_count_is_not_judged_and_the_page_says_so(
    account, newsletter, campaign, customer, mailbox
):
    add_contacts(account, newsletter, 20)
    test = splittests.create_test(
        campaign, subjects=["B"], test_percent=20, metric="clicks", wait_hours=1, by=customer
    )
    splittests.start_test(test, by=customer)
    rates, note = splittests.judged(test)
    assert rates == {"A": None, "B": None} and "does not ask" in note
    test = splittests.decide(test)
    assert test.winner == campaign  # nothing to judge: A
    SendingSettings.objects.update_or_create(
        account=account, defaults={"tracking": SendingSettings.Tracking.PER_CONTACT}
    )
    other = Campaign.objects.create(
        account=account, name="Dec", subject="Dec", from_email="news@news.example.org",
        body="<p>Hi</p>", track_opens=True,
    )  # fmt: skip
    other.lists.add(newsletter)
    second = splittests.create_test(
        other, subjects=["B"], test_percent=20, metric="opens", wait_hours=1, by=customer
    )
    assert "objected to tracking are not counted" in splittests.judged(second)[1]


def test_bad_input_changes_nothing(account, newsletter, campaign, customer, mailbox):
    add_contacts(account, newsletter, 3)
    for values in (
        {"subjects": []},
        {"subjects": ["b", "c", "d", "e"]},
        {"test_percent": 90},
        {"wait_hours": 0},
        {"metric": "luck"},
        {"subjects": ["{% if %}"]},
    ):
        arguments = {"subjects": ["B"], "test_percent": 20, "metric": "opens", "wait_hours": 1}
        with pytest.raises(SplitTestError):
            splittests.create_test(campaign, by=customer, **{**arguments, **values})
    assert not SplitTest.objects.exists()
    assert Campaign.objects.count() == 1
    test = splittests.create_test(
        campaign, subjects=["B"], test_percent=20, metric="opens", wait_hours=1, by=customer
    )
    with pytest.raises(SplitTestError, match="Too few"):
        splittests.start_test(test, by=customer)
    test.refresh_from_db()
    assert test.status == SplitTest.Status.DRAFT and not Delivery.objects.exists()


def test_the_pages_create_start_and_decide_a_test(
    client, account, newsletter, campaign, customer, other_customer, mailbox
):
    add_contacts(account, newsletter, 20)
    client.force_login(customer)
    url = reverse("automations:split_tests")
    form = {"campaign": campaign.pk, "test_percent": 30, "metric": "manual", "wait_hours": 2}
    bad = client.post(url, {**form, "subjects": ""})
    assert bad.status_code == 200 and not SplitTest.objects.exists()
    answer = client.post(url, {**form, "subjects": "Second\nThird"})
    test = SplitTest.objects.get()
    page = reverse("automations:split_test", args=[test.uuid])
    assert answer["Location"] == page
    client.post(page, {"action": "start"})
    assert len(mailbox) == 6
    text = client.get(page).content.decode()
    assert "Second" in text and "Third" in text and "Choose the winner" in text
    client.force_login(other_customer)
    assert client.get(page).status_code == 404
    assert client.post(page, {"action": "choose", "label": "B"}).status_code == 404
    client.force_login(customer)
    client.post(page, {"action": "choose", "label": "C"})
    test.refresh_from_db()
    assert test.status == SplitTest.Status.DECIDED and test.winner.subject == "Third"
    assert len(mailbox) == 20 and sum(m.subject == "Third" for m in mailbox) == 2 + 14


def test_a_variant_sent_on_its_own_stops_the_test(account, newsletter, campaign, customer):
    add_contacts(account, newsletter, 20)
    test = splittests.create_test(
        campaign, subjects=["B"], test_percent=20, metric="opens", wait_hours=1, by=customer
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENT)
    with pytest.raises(SplitTestError, match="draft"):
        splittests.start_test(test, by=customer)
    assert not Delivery.objects.exists()
