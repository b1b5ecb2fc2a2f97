"""A/B tests: each variant (subject, sender name, content) to an equal part of a random
sample, the winner by what the account's tracking can count (P26) to everyone else after
the wait; send times split everyone, each part at its time through the engine's
scheduler; the report's intervals and tests; nobody mailed twice, whatever decides
twice."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from tests.factories import campaign_status
from tests.sending.conftest import add_contacts
from tidings.audience import services as audience
from tidings.automations import splittests, statistics
from tidings.automations.models import SplitTest
from tidings.automations.splittests import SplitTestError
from tidings.campaigns import services as campaigns
from tidings.campaigns.models import Campaign
from tidings.sending import lifecycle, tokens, tracking
from tidings.sending import services as sending
from tidings.sending.models import CampaignStat, Delivery

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


def test_bad_input_changes_nothing(account, newsletter, campaign, customer, mailbox):
    add_contacts(account, newsletter, 3)
    soon, naive = timezone.now() + timedelta(hours=1), datetime(2030, 1, 1)
    for values in (
        {"subjects": []},
        {"subjects": ["b", "c", "d", "e"]},
        {"test_percent": 90},
        {"wait_hours": 0},
        {"metric": "luck"},
        {"subjects": ["{% if %}"]},
        {"subjects": ["x" * 301]},
        {"kind": "colour"},
        {"kind": "from_name", "from_names": []},
        {"kind": "from_name", "from_names": ["n" * 201]},
        {"kind": "content", "variants": 5},
        {"kind": "content", "variants": 1},
        {"kind": "send_time", "send_times": [soon]},
        {"kind": "send_time", "send_times": [soon, soon]},
        {"kind": "send_time", "send_times": [soon, timezone.now() - timedelta(minutes=1)]},
        {"kind": "send_time", "send_times": [soon, naive]},
        {"kind": "send_time", "send_times": [soon, soon + timedelta(days=400)]},
        {"kind": "send_time", "send_times": [soon, soon + timedelta(hours=1)], "metric": "manual"},
        {"kind": "send_time", "send_times": [soon, soon + timedelta(hours=1)], "time_zone": "Mars"},
    ):
        arguments = {"subjects": ["B"], "test_percent": 20, "metric": "opens", "wait_hours": 1}
        with pytest.raises(SplitTestError):
            splittests.create_test(campaign, by=customer, **{**arguments, **values})
    assert not SplitTest.objects.exists()
    assert Campaign.objects.count() == 1
    test = splittests.create_test(
        campaign, subjects=["B"], test_percent=20, metric="opens", wait_hours=1, by=customer
    )
    for tested in Campaign.objects.all():  # A, or its copy B, in a second test
        with pytest.raises(SplitTestError, match="has an A/B test already"):
            splittests.create_test(tested, subjects=["C"], by=customer)
    assert SplitTest.objects.count() == 1 and Campaign.objects.count() == 2
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
    form = {
        "campaign": campaign.pk, "kind": "subject", "test_percent": 30, "metric": "manual",
        "wait_hours": 2, "timezone": "UTC",
    }  # fmt: skip
    bad = client.post(url, form)
    assert bad.status_code == 200 and not SplitTest.objects.exists()
    assert "Give one to three other subjects." in bad.content.decode()
    answer = client.post(url, {**form, "subject_b": "Second", "subject_c": "Third"})
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
    # Sending to the rest is asked again first: nothing goes until it is confirmed.
    asked = client.post(page, {"action": "choose", "label": "C"}).content.decode()
    assert "Send variant C to the rest?" in asked and "cannot be undone" in asked
    test.refresh_from_db()
    assert test.status == SplitTest.Status.TESTING and len(mailbox) == 6
    client.post(page, {"action": "choose", "label": "C", "confirm": "B"})  # not what was asked
    test.refresh_from_db()
    assert test.status == SplitTest.Status.TESTING and len(mailbox) == 6
    client.post(page, {"action": "choose", "label": "C", "confirm": "C"})
    test.refresh_from_db()
    assert test.status == SplitTest.Status.DECIDED and test.winner.subject == "Third"
    assert len(mailbox) == 20 and sum(m.subject == "Third" for m in mailbox) == 2 + 14


def test_a_variant_sent_on_its_own_stops_the_test(account, newsletter, campaign, customer):
    add_contacts(account, newsletter, 20)
    test = splittests.create_test(
        campaign, subjects=["B"], test_percent=20, metric="opens", wait_hours=1, by=customer
    )
    Campaign.objects.filter(pk=campaign.pk).update(**campaign_status(Campaign.Status.SENT))
    with pytest.raises(SplitTestError, match="draft"):
        splittests.start_test(test, by=customer)
    assert not Delivery.objects.exists()


# --- the kinds of variant -----------------------------------------------------------------


def test_sender_name_variants_go_out_under_their_names(
    account, newsletter, campaign, customer, mailbox
):
    add_contacts(account, newsletter, 30)
    test = splittests.create_test(
        campaign, kind="from_name", from_names=["Ann at News", "", "  The   Team "],
        test_percent=40, metric="opens", wait_hours=1, by=customer,
    )  # fmt: skip
    names = [v.campaign.from_name for v in test.variants.order_by("label")]
    assert names == ["", "Ann at News", "The Team"]
    splittests.start_test(test, by=customer)
    assert len(mailbox) == 12
    senders = Counter(m["From"].addresses[0].display_name for m in mailbox)
    assert senders["Ann at News"] == 4 and senders["The Team"] == 4
    assert len({m.to[0] for m in mailbox}) == 12


def test_content_variants_are_drafts_the_editor_changes(
    client, account, newsletter, campaign, customer, mailbox
):
    add_contacts(account, newsletter, 30)
    test = splittests.create_test(
        campaign, kind="content", variants=3, test_percent=30, metric="clicks", wait_hours=1,
        by=customer,
    )  # fmt: skip
    a, b, c = (v.campaign for v in test.variants.order_by("label"))
    assert b.body == c.body == a.body and b.subject == a.subject
    client.force_login(customer)
    page = client.get(reverse("automations:split_test", args=[test.uuid])).content.decode()
    for variant in (a, b, c):
        assert reverse("campaigns:edit", args=[variant.uuid]) in page
    campaigns.update_campaign(b, by=customer, body="<p>Second text {{ contact.name }}</p>")
    campaigns.update_campaign(c, by=customer, body="<p>Third text {{ contact.name }}</p>")
    splittests.start_test(test, by=customer)
    bodies = Counter(
        "Second" if "Second text" in m.body else "Third" if "Third text" in m.body else "A"
        for m in mailbox
    )
    assert bodies == {"A": 3, "Second": 3, "Third": 3}


def test_send_times_split_everyone_once_and_each_part_goes_at_its_time(
    account, newsletter, campaign, customer, mailbox
):
    add_contacts(account, newsletter, 31)
    now = timezone.now()
    times = [now + timedelta(hours=h) for h in (5, 1, 3)]
    test = splittests.create_test(
        campaign, kind="send_time", send_times=times, metric="opens", by=customer
    )
    assert test.test_percent == 100
    splittests.start_test(test, by=customer)
    test.refresh_from_db()
    assert test.status == SplitTest.Status.TIMED and not mailbox
    parts = [v.campaign for v in test.variants.order_by("label")]
    for part, when in zip(parts, times, strict=True):
        part.refresh_from_db()
        assert part.status == Campaign.Status.SCHEDULED and part.scheduled_at == when
    sizes = sorted(Delivery.objects.filter(campaign=p).count() for p in parts)
    assert sizes == [10, 10, 11]
    owners = Counter(Delivery.objects.values_list("contact_id", flat=True))
    assert len(owners) == 31 and set(owners.values()) == {1}
    assert splittests.decide_due(now + timedelta(days=1)) == 0  # no winner phase
    # The engine's own scheduler sends each part at its time, and only that part.
    assert lifecycle.start_due_campaigns(now + timedelta(minutes=30)) == []
    assert lifecycle.start_due_campaigns(now + timedelta(hours=1)) == [parts[1].pk]
    assert len(mailbox) == Delivery.objects.filter(campaign=parts[1]).count()
    lifecycle.start_due_campaigns(now + timedelta(hours=5))
    per_recipient = Counter(m.to[0] for m in mailbox)
    assert len(per_recipient) == 31 and set(per_recipient.values()) == {1}
    for part in parts:
        part.refresh_from_db()
        assert part.status == Campaign.Status.SENT
    test.refresh_from_db()
    assert test.status == SplitTest.Status.TIMED and test.rest is None


def test_the_send_time_report_says_which_time_did_better(
    account, newsletter, campaign, customer, mailbox
):
    sending.set_tracking(account, "contact")
    add_contacts(account, newsletter, 40)
    now = timezone.now()
    test = splittests.create_test(
        campaign, kind="send_time", metric="opens", by=customer,
        send_times=[now + timedelta(hours=1), now + timedelta(hours=2)],
    )  # fmt: skip
    splittests.start_test(test, by=customer)
    lifecycle.start_due_campaigns(now + timedelta(hours=2))
    a, b = (v.campaign for v in test.variants.order_by("label"))
    _open(a, 2)
    _open(b, 16)
    report = splittests.report(test)
    assert report.best == "B"
    by_label = {f.label: f for f in report.variants}
    assert (by_label["A"].counted, by_label["A"].successes) == (20, 2)
    assert by_label["B"].rate == pytest.approx(0.8)
    assert by_label["A"].significant and by_label["A"].p_value < 0.001
    assert "significant" in report.verdict and "not significant" not in report.verdict


def _open(campaign: Campaign, n: int) -> None:
    """`n` recipients of `campaign` open it, as the pixel records it (per contact)."""
    for delivery in Delivery.objects.filter(campaign=campaign).order_by("pk")[:n]:
        tracking.record(tokens.TrackingToken(campaign.pk, delivery.pk), "open")


# --- the statistics -----------------------------------------------------------------------


def test_wilson_intervals_match_known_values():
    low, high = statistics.wilson_interval(10, 100)
    assert (low, high) == (pytest.approx(0.0552, abs=1e-4), pytest.approx(0.1744, abs=1e-4))
    # Newcombe (1998), table I: 81/263 -> 0.2553..0.3662; 0/10 -> 0..0.2775
    assert statistics.wilson_interval(81, 263) == (
        pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4),
    )  # fmt: skip
    assert statistics.wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert statistics.wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        statistics.wilson_interval(11, 10)


def test_the_two_proportion_test_matches_known_values():
    # 10/100 against 20/100: z = 1.980, two-sided p = 0.0477 (pooled proportion 0.15)
    assert statistics.two_proportion_p_value(20, 100, 10, 100) == pytest.approx(0.0477, abs=1e-4)
    assert statistics.significant(statistics.two_proportion_p_value(20, 100, 10, 100))
    # 12/100 against 10/100: p = 0.652, not significant
    p = statistics.two_proportion_p_value(12, 100, 10, 100)
    assert p == pytest.approx(0.652, abs=1e-3) and not statistics.significant(p)
    assert statistics.two_proportion_p_value(0, 10, 0, 10) == 1.0
    assert statistics.two_proportion_p_value(1, 0, 0, 10) is None


def test_a_winner_that_is_not_significant_is_still_sent_by_the_rule_and_says_so(
    client, account, newsletter, campaign, customer, mailbox
):
    sending.set_tracking(account, "contact")
    add_contacts(account, newsletter, 40)
    test = splittests.create_test(
        campaign, subjects=["B"], test_percent=50, metric="opens", wait_hours=1, by=customer
    )
    now = timezone.now()
    splittests.start_test(test, by=customer, now=now)
    a, b = (v.campaign for v in test.variants.order_by("label"))
    _open(a, 3)
    _open(b, 4)
    report = splittests.report(test)
    assert report.best == "B" and "not significant" in report.verdict
    a_row = report.variants[0]
    assert (a_row.low, a_row.high) == statistics.wilson_interval(3, 10)
    client.force_login(customer)
    page = client.get(reverse("automations:split_test", args=[test.uuid])).content.decode()
    assert "the difference with A is not significant" in page
    assert "30.0 %" in page and "not significant (p = " in page
    splittests.decide_due(now + timedelta(hours=1))
    test.refresh_from_db()
    assert test.winner == b and "not significant" in test.note and "by the rule" in test.note
    assert len(mailbox) == 40
    # The page says what the figures are judged on once, and why this winner once.
    page = client.get(reverse("automations:split_test", args=[test.uuid])).content.decode()
    assert page.count("Judged on unique contacts") == 1 and page.count("by the rule") == 1


@pytest.mark.parametrize("opens", [0, 2])
def test_level_variants_are_said_level_not_a_winner(
    client, account, newsletter, campaign, customer, mailbox, opens
):
    """The same rate (none opened yet, or two each) names no winner on the page; the
    rule, decided now, would send the first."""
    sending.set_tracking(account, "contact")
    add_contacts(account, newsletter, 40)
    test = splittests.create_test(
        campaign, subjects=["B"], test_percent=50, metric="opens", wait_hours=1, by=customer
    )
    splittests.start_test(test, by=customer)
    a, b = (v.campaign for v in test.variants.order_by("label"))
    _open(a, opens)
    _open(b, opens)
    report = splittests.report(test)
    assert "did best" not in report.verdict
    assert report.verdict.startswith("Variants A, B are level")
    client.force_login(customer)
    page = client.get(reverse("automations:split_test", args=[test.uuid])).content.decode()
    assert "are level: nothing tells them apart yet" in page and "did best" not in page


def test_a_send_time_test_read_in_another_time_zone_says_utc_and_sends_no_winner(
    client, account, newsletter, campaign, customer, mailbox
):
    """Walk22: a user in Paris read 12:00 UTC for a part sent at 11:00 UTC (the reader's
    time labelled UTC), and level parts "would be sent", though a test of send time
    has no winner."""
    customer.time_zone = "Europe/Paris"
    customer.save(update_fields=["time_zone"])
    sending.set_tracking(account, "contact")
    add_contacts(account, newsletter, 10)
    day = (timezone.now() + timedelta(days=60)).date()
    times = [datetime.combine(day, time(h, 0), UTC) for h in (11, 17)]
    test = splittests.create_test(
        campaign, kind="send_time", send_times=times, metric="opens", by=customer
    )
    splittests.start_test(test, by=customer)
    lifecycle.start_due_campaigns(times[1])
    assert len(mailbox) == 10
    client.force_login(customer)
    page = client.get(reverse("automations:split_test", args=[test.uuid])).content.decode()
    assert "11:00 UTC" in page and "17:00 UTC" in page
    assert "12:00 UTC" not in page and "18:00 UTC" not in page
    assert "are level: nothing tells them apart yet" in page
    assert "would be sent" not in page and "chooses the winner" not in page
    assert "nothing more is sent" in page


def test_the_decision_time_is_said_in_the_readers_time_zone_named(
    client, account, newsletter, campaign, customer, mailbox
):
    customer.time_zone = "Europe/Paris"
    customer.save(update_fields=["time_zone"])
    add_contacts(account, newsletter, 20)
    test = splittests.create_test(
        campaign, subjects=["B"], test_percent=20, metric="opens", wait_hours=1, by=customer
    )
    now = datetime(2030, 1, 15, 8, 0, tzinfo=UTC)
    splittests.start_test(test, by=customer, now=now)
    client.force_login(customer)
    page = client.get(reverse("automations:split_test", args=[test.uuid])).content.decode()
    assert "by itself at 15 Jan 2030, 10:00 (Europe/Paris)" in page  # 09:00 UTC


# --- what may be counted (P26), for every kind ----------------------------------------------


@pytest.mark.promise("P26")
@pytest.mark.parametrize("kind", ["subject", "from_name", "content", "send_time"])
def test_every_kind_is_judged_on_what_may_be_counted_and_says_so(
    account, newsletter, campaign, customer, mailbox, kind
):
    contacts = add_contacts(account, newsletter, 20)
    now = timezone.now()
    arguments = {
        "subject": {"subjects": ["B"]},
        "from_name": {"from_names": ["B"]},
        "content": {"variants": 2},
        "send_time": {"send_times": [now + timedelta(hours=1), now + timedelta(hours=2)]},
    }[kind]
    test = splittests.create_test(
        campaign, kind=kind, test_percent=50, metric="opens", wait_hours=1, by=customer,
        **arguments,
    )  # fmt: skip
    splittests.start_test(test, by=customer)
    lifecycle.start_due_campaigns(now + timedelta(hours=2))
    a, b = (v.campaign for v in test.variants.order_by("label"))
    # Aggregate only (the default): events, not people; no interval nor test.
    tracking.count(b.pk, CampaignStat.Kind.OPEN, 3)
    report = splittests.report(test)
    assert "aggregate only" in report.note and "no confidence interval" in report.note
    assert report.best == "B" and all(f.low is None and f.p_value is None for f in report.variants)
    # Per contact: people, and those who objected are out of the rate and its base.
    sending.set_tracking(account, "contact")
    objector = Delivery.objects.filter(campaign=a).first().contact
    audience.set_preferences(
        objector, name="", attributes={}, allow_tracking=False, allow_profiling=True
    )
    _open(a, 3)  # the objector's first: their open is not counted
    report = splittests.report(test)
    assert "objected to tracking are not counted" in report.note
    assert "1 recipient objected: left out of the rates and their base" in report.note
    row = report.variants[0]
    assert row.counted == row.delivered - 1 and row.successes == 2
    assert report.best == "A" and row.low is not None
    assert len(contacts) == 20


@pytest.mark.promise("P26")
def test_a_measure_the_campaign_does_not_ask_for_is_not_judged(
    account, newsletter, campaign, customer, mailbox
):
    add_contacts(account, newsletter, 20)
    test = splittests.create_test(
        campaign, subjects=["B"], test_percent=20, metric="clicks", wait_hours=1, by=customer
    )
    splittests.start_test(test, by=customer)
    report = splittests.report(test)
    assert [f.rate for f in report.variants] == [None, None] and "does not ask" in report.note
    assert report.verdict == "Nothing to compare yet."
    test = splittests.decide(test)
    assert test.winner == campaign  # nothing to judge: A


def test_the_page_creates_a_test_of_send_time_in_the_chosen_time_zone(
    client, account, newsletter, campaign, customer
):
    client.force_login(customer)
    url = reverse("automations:split_tests")
    day = (timezone.now() + timedelta(days=60)).date()
    answer = client.post(url, {
        "campaign": campaign.pk, "kind": "send_time", "metric": "clicks",
        "send_time_a": f"{day}T09:00", "send_time_b": f"{day}T18:30",
        "timezone": "Europe/Brussels",
    })  # fmt: skip
    assert answer.status_code == 302, answer.content.decode()
    test = SplitTest.objects.get()
    assert answer["Location"] == reverse("automations:split_test", args=[test.uuid])
    brussels = ZoneInfo("Europe/Brussels")
    wanted = [
        datetime.combine(day, time(9, 0), brussels),
        datetime.combine(day, time(18, 30), brussels),
    ]
    assert [v.send_at for v in test.variants.order_by("label")] == wanted
    page = client.get(answer["Location"]).content.decode()
    assert "send time" in page and "09:00 Europe/Brussels" in page
    assert "Split the recipients and schedule each time" in page


def test_the_decision_job_goes_by_the_clock(
    test_clock, account, newsletter, campaign, customer, mailbox
):
    add_contacts(account, newsletter, 20)
    test = splittests.create_test(
        campaign, subjects=["B"], test_percent=20, metric="opens", wait_hours=3, by=customer
    )
    splittests.start_test(test, by=customer)
    assert splittests.decide_due() == 0
    test_clock.advance(timedelta(hours=2))
    assert splittests.decide_due() == 0
    test_clock.advance(timedelta(hours=1, minutes=1))
    assert splittests.decide_due() == 1
    assert len(mailbox) == 20


def test_send_time_parts_start_by_the_clock(
    test_clock, account, newsletter, campaign, customer, mailbox
):
    """Scheduled campaigns, send-time parts among them, start when the test clock
    reaches their time, as the automations and the decisions do: trying one by hand
    needs no waiting."""
    add_contacts(account, newsletter, 4)
    now = timezone.now()
    times = [now + timedelta(hours=h) for h in (1, 2)]
    test = splittests.create_test(
        campaign, kind="send_time", send_times=times, metric="opens", by=customer
    )
    splittests.start_test(test, by=customer)
    first, second = (v.campaign for v in test.variants.order_by("label"))
    assert lifecycle.start_due_campaigns() == []
    test_clock.advance(timedelta(hours=1, minutes=1))
    assert lifecycle.start_due_campaigns() == [first.pk]
    test_clock.advance(timedelta(hours=1))
    assert lifecycle.start_due_campaigns() == [second.pk]
    assert len(mailbox) == 4


def test_without_a_draft_campaign_the_page_links_to_a_new_one_and_refuses_with_the_reason(
    client, account, customer, other_customer
):
    """The Campaign select was empty, with nothing said, for an account whose campaigns
    are all sent (or that has none): only a draft can be variant A. Another account's
    draft counts for nothing."""
    Campaign.objects.create(account=account, name="Sent", **campaign_status(Campaign.Status.SENT))
    Campaign.objects.create(account=other_customer.account, name="Their draft")
    client.force_login(customer)
    url = reverse("automations:split_tests")
    page = client.get(url).content.decode()
    assert "You have no draft campaign to test" in page and reverse("campaigns:new") in page
    assert 'name="campaign"' not in page and "Their draft" not in page
    answer = client.post(url, {
        "kind": "subject", "subject_b": "Second", "test_percent": 20, "metric": "opens",
        "wait_hours": 4, "timezone": "UTC",
    })  # fmt: skip
    text = answer.content.decode()
    assert answer.status_code == 200 and not SplitTest.objects.exists()
    assert escape("Write a draft campaign first: it is the test's variant A.") in text
    assert "This field is required." not in text and reverse("campaigns:new") in text


def test_the_send_times_are_shown_in_the_time_zone_chosen_for_the_test(
    client, account, newsletter, campaign, customer
):
    """The parts' times were shown in UTC, though the customer chose Brussels' time
    for the test: 09:00 there read 08:00 (or 07:00) UTC."""
    add_contacts(account, newsletter, 4)
    client.force_login(customer)
    day = (timezone.now() + timedelta(days=60)).date()
    answer = client.post(reverse("automations:split_tests"), {
        "campaign": campaign.pk, "kind": "send_time", "metric": "opens",
        "send_time_a": f"{day}T09:00", "send_time_b": f"{day}T18:30",
        "timezone": "Europe/Brussels",
    })  # fmt: skip
    test = SplitTest.objects.get()
    assert test.time_zone == "Europe/Brussels"
    page = answer["Location"]
    before = client.get(page).content.decode()
    client.post(page, {"action": "start"})
    after = client.get(page).content.decode()  # the same once the parts are scheduled
    shown = f"{day.day} {day.strftime('%b %Y')}"
    for text in (before, after):
        assert f"{shown}, 09:00 Europe/Brussels" in text
        assert f"{shown}, 18:30 Europe/Brussels" in text and "UTC" not in text
    parts = [v.campaign for v in test.variants.order_by("label")]
    for part in parts:
        part.refresh_from_db()
        assert part.status == Campaign.Status.SCHEDULED
        assert part.schedule_timezone == "Europe/Brussels"


def test_the_pages_say_the_best_is_compared_with_each_of_the_others(
    client, account, newsletter, campaign, customer
):
    """Found walking the product: "the best variant is compared with each other by a
    two-proportion z-test" (and "the best time"), which says nothing one can follow."""
    day = (timezone.now() + timedelta(days=60)).date()
    times = [datetime.combine(day, time(h, 0), UTC) for h in (11, 17)]
    subjects = splittests.create_test(campaign, subjects=["Other"], by=customer)
    other = Campaign.objects.create(
        account=account, name="Times", subject="S", from_email="news@news.example.org"
    )
    sends = splittests.create_test(other, kind="send_time", send_times=times, by=customer)
    client.force_login(customer)
    for test, best in ((subjects, "the best variant"), (sends, "the best time")):
        page = client.get(reverse("automations:split_test", args=[test.uuid])).content.decode()
        assert f"{best} is compared with each of the others by a two-proportion" in page
        assert "compared with each other" not in page
