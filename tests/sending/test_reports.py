"""A campaign's report: every rate (none divided by zero), clicks per link, buckets that
suit an hour-long and a month-long campaign, figures by receiving domain, the CSV, XLSX
and PDF exports, and what the page says the tracking mode leaves out (P26)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
from django.urls import reverse
from pypdf import PdfReader

from tests.factories import campaign_status
from tidings.audience import services as audience
from tidings.audience.models import Contact, MailingList
from tidings.automations import services as automation_services
from tidings.campaigns.models import Campaign
from tidings.sending import reports, services, tokens, tracking
from tidings.sending.models import BounceRecord, Delivery, LinkClick, TrackingEvent

pytestmark = pytest.mark.django_db

D = Delivery.Status
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def sent(
    campaign: Campaign, contacts: list[Contact], *, at: datetime = START, **kw
) -> list[Delivery]:  # type: ignore[no-untyped-def]
    """Deliveries as the engine leaves them once the messages went out."""
    Campaign.objects.filter(pk=campaign.pk).update(**campaign_status("sent"), started_at=at)
    campaign.refresh_from_db()
    return [
        Delivery.objects.create(
            campaign=campaign, contact=c, status=kw.get("status", D.SENT), sent_at=at
        )
        for c in contacts
    ]


def people(account, newsletter, domain: str, n: int, start: int = 0) -> list[Contact]:  # type: ignore[no-untyped-def]
    return [
        audience.add_contact(account, f"p{start + i}@{domain}", lists=[newsletter])
        for i in range(n)
    ]


@pytest.fixture
def tracked(campaign):  # type: ignore[no-untyped-def]
    campaign.track_opens = campaign.track_clicks = True
    campaign.body = (
        '<p>Read <a href="https://example.org/a">this</a> and '
        '<a href="https://shop.example/u/{{ contact.email }}">your page</a>.</p>'
    )
    campaign.save()
    return campaign


def by_key(report: reports.Report) -> dict[str, reports.Figure]:
    return {f.key: f for f in report.figures}


def test_a_campaign_with_no_delivery_has_counts_of_zero_and_no_rate(client, customer, campaign):
    report = reports.build(campaign)
    figures = by_key(report)
    assert figures["sent"].count == 0 and figures["delivered"].count == 0
    assert all(f.rate is None for f in report.figures)
    assert report.series.starts == [] and report.domains == [] and report.links == []
    client.force_login(customer)
    page = client.get(reverse("sending:report", args=[campaign.uuid])).content.decode()
    assert "—" in page and "Nothing has been sent yet." in page
    for fmt in reports.EXPORT_FORMATS:
        response = client.get(reverse("sending:report_export", args=[campaign.uuid, fmt]))
        assert response.status_code == 200, fmt


def test_every_rate_is_its_count_over_the_right_whole(account, newsletter, tracked):
    services.set_tracking(account, "contact")
    contacts = people(account, newsletter, "example.net", 10)
    deliveries = sent(tracked, contacts)
    for d in deliveries[8:]:
        d.status = D.BOUNCED
        d.save()
    tracking.count(tracked.pk, "bounce", 2)
    for d in deliveries[:4]:
        tracking.record(tokens.TrackingToken(tracked.pk, d.pk), "open")
    tracking.record(tokens.TrackingToken(tracked.pk, deliveries[0].pk), "open")  # again
    for d in deliveries[:2]:
        tracking.record(tokens.TrackingToken(tracked.pk, d.pk, "https://example.org/a"), "click")
    tracking.count(tracked.pk, "unsubscribe")
    tracking.count(tracked.pk, "complaint")

    f = by_key(reports.build(tracked))
    assert (f["sent"].count, f["delivered"].count, f["bounced"].count) == (10, 8, 2)
    assert f["delivered"].rate == pytest.approx(80.0)
    assert f["bounced"].rate == pytest.approx(20.0)
    assert (f["opened"].count, f["opened"].rate) == (4, pytest.approx(50.0))  # people, of 8
    assert (f["clicked"].count, f["clicked"].rate) == (2, pytest.approx(25.0))
    assert f["click_to_open"].rate == pytest.approx(50.0)  # 2 of the 4 who opened
    assert f["unsubscribed"].rate == pytest.approx(12.5)
    assert f["complained"].rate == pytest.approx(12.5)


def test_rates_over_a_zero_whole_are_none_not_an_error():
    assert reports.rate(0, 0) is None and reports.rate(3, 0) is None
    figures = {f.key: f for f in reports.figures(tracking.summarise({}))}
    assert all(f.rate is None for f in figures.values())
    # Sent but nothing opened: click-to-open has nothing to divide by.
    summary = tracking.summarise({"sent": {START: 5}})
    figures = {f.key: f for f in reports.figures(summary)}
    assert figures["opened"].rate == 0.0 and figures["click_to_open"].rate is None


def test_clicks_per_link_never_keep_a_contacts_value(client, account, newsletter, tracked):
    services.set_tracking(account, "aggregate")
    (reader,) = people(account, newsletter, "example.net", 1)
    sent(tracked, [reader])
    plain = tokens.click_token(tracked.pk, None, "https://example.org/a")
    personal = tokens.click_token(tracked.pk, None, f"https://shop.example/u/{reader.email}")
    for token in (plain, plain, personal):
        assert client.get(reverse("sending:click", args=[token])).status_code == 302
    assert reports.clicks_per_link(tracked) == [
        ("https://example.org/a", 2),
        ("https://shop.example/", 1),
    ]
    assert not LinkClick.objects.filter(url__contains=reader.email).exists()


def test_an_hour_long_campaign_is_shown_by_the_minute(account, newsletter, tracked):
    services.set_tracking(account, "contact")
    contacts = people(account, newsletter, "example.net", 50)
    for i, contact in enumerate(contacts):
        sent(tracked, [contact], at=START + timedelta(minutes=i))
    series = reports.build(tracked).series
    assert series.bucket == timedelta(minutes=1)
    assert len(series.starts) == 50 and sum(series.lines["sent"]) == 50
    assert series.labels[0] == "09:00" and series.labels[-1] == "09:49"


def test_a_month_long_campaign_is_shown_by_the_day(account, newsletter, tracked):
    services.set_tracking(account, "contact")
    deliveries = sent(tracked, people(account, newsletter, "example.net", 3))
    # Opens come in over a month; the last one 30 days after sending.
    for day, d in zip((0, 12, 30), deliveries, strict=True):
        TrackingEvent.objects.create(
            campaign=tracked, delivery=d, kind="open", first=True, at=START + timedelta(days=day)
        )
    series = reports.build(tracked).series
    assert series.bucket == timedelta(days=1)
    assert len(series.starts) == 31 and len(series.starts) <= reports.MAX_POINTS
    assert series.labels[0] == "02 Nov" and series.labels[-1] == "02 Dec"
    assert series.lines["open"][0] == 1 and series.lines["open"][12] == 1
    assert series.lines["open"][30] == 1 and sum(series.lines["sent"]) == 3


def test_the_bucket_is_the_smallest_that_fits_the_span():
    assert reports.bucket_for(timedelta(0))[0] == timedelta(minutes=1)
    assert reports.bucket_for(timedelta(hours=1))[0] == timedelta(minutes=5)
    assert reports.bucket_for(timedelta(hours=6))[0] == timedelta(minutes=15)
    assert reports.bucket_for(timedelta(days=2))[0] == timedelta(hours=1)
    assert reports.bucket_for(timedelta(days=30))[0] == timedelta(days=1)
    assert reports.bucket_for(timedelta(days=400))[0] == timedelta(days=7)


def test_figures_by_receiving_domain(account, newsletter, tracked):
    services.set_tracking(account, "contact")
    gmail = people(account, newsletter, "gmail.com", 3)
    outlook = people(account, newsletter, "Outlook.com", 2, start=10)
    deliveries = sent(tracked, gmail + outlook)
    Delivery.objects.filter(pk=deliveries[0].pk).update(status=D.BOUNCED)
    Delivery.objects.filter(pk=deliveries[3].pk).update(status=D.FAILED)
    BounceRecord.objects.create(
        account=account, contact=outlook[1], campaign=tracked, kind="complaint", source="webhook"
    )
    tracking.record(tokens.TrackingToken(tracked.pk, deliveries[1].pk), "open")
    tracking.record(tokens.TrackingToken(tracked.pk, deliveries[4].pk), "open")
    tracking.record(
        tokens.TrackingToken(tracked.pk, deliveries[4].pk, "https://example.org/a"), "click"
    )

    rows = {r.domain: r for r in reports.by_domain(tracked, per_contact=True)}
    assert list(rows) == ["gmail.com", "outlook.com"]
    g, o = rows["gmail.com"], rows["outlook.com"]
    assert (g.messages, g.delivered, g.bounced, g.failed, g.complained) == (3, 2, 1, 0, 0)
    assert (o.messages, o.delivered, o.bounced, o.failed, o.complained) == (2, 1, 0, 1, 1)
    assert g.bounce_rate == pytest.approx(100 / 3) and g.open_rate == pytest.approx(50.0)
    assert (o.opened, o.clicked, o.click_rate) == (1, 1, pytest.approx(100.0))
    # Under aggregate-only tracking, opens and clicks by domain are not computed at all.
    aggregate = {r.domain: r for r in reports.by_domain(tracked, per_contact=False)}
    assert aggregate["gmail.com"].opened is None and aggregate["gmail.com"].open_rate is None


def test_many_domains_end_with_one_row_for_the_others(account, newsletter, tracked):
    contacts = [
        audience.add_contact(account, f"a@d{i:02d}.example", lists=[newsletter]) for i in range(15)
    ]
    sent(tracked, contacts)
    rows = reports.by_domain(tracked, per_contact=False)
    assert len(rows) == reports.DOMAINS_SHOWN
    assert rows[-1].domain == "other domains (4)" and rows[-1].messages == 4


def test_the_report_exports_as_csv_xlsx_and_pdf(client, customer, account, newsletter, tracked):
    services.set_tracking(account, "contact")
    deliveries = sent(tracked, people(account, newsletter, "gmail.com", 4))
    tracking.record(tokens.TrackingToken(tracked.pk, deliveries[0].pk), "open")
    tracking.record(
        tokens.TrackingToken(tracked.pk, deliveries[0].pk, "https://example.org/a"), "click"
    )
    client.force_login(customer)

    def get(fmt: str):  # type: ignore[no-untyped-def]
        response = client.get(reverse("sending:report_export", args=[tracked.uuid, fmt]))
        assert response.status_code == 200
        assert f'.{fmt}"' in response["Content-Disposition"]
        return response.content

    table = list(csv.reader(io.StringIO(get("csv").decode("utf-8-sig"))))
    assert table[0] == ["section", "item", "measure", "count", "rate (%)"]
    assert ["summary", "Opened", "of delivered", "1", "25.0"] in table
    assert ["clicks per link", "https://example.org/a", "clicks", "1", ""] in table
    assert ["by domain", "gmail.com", "delivered", "4", "100.0"] in table

    book = openpyxl.load_workbook(io.BytesIO(get("xlsx")), read_only=True)
    cells = [list(row) for row in book.active.iter_rows(values_only=True)]
    assert ["summary", "Click-to-open", "of opened", None, "100.0"] in cells
    assert ["by domain", "gmail.com", "messages", 4, None] in cells

    pdf = get("pdf")
    assert pdf.startswith(b"%PDF")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for expected in (
        "Report: November news",
        "Click-to-open",
        "25.0 %",
        "gmail.com",
        "https://example.org/a",
    ):
        assert expected in text, expected


def test_an_unknown_export_format_or_another_accounts_report_is_not_found(
    client, customer, other_customer, campaign
):
    client.force_login(customer)
    assert (
        client.get(reverse("sending:report_export", args=[campaign.uuid, "exe"])).status_code == 404
    )
    client.force_login(other_customer)
    for fmt in reports.EXPORT_FORMATS:
        url = reverse("sending:report_export", args=[campaign.uuid, fmt])
        assert client.get(url).status_code == 404
    assert client.get(reverse("sending:report", args=[campaign.uuid])).status_code == 404


@pytest.mark.promise("P26")
def test_the_page_says_what_aggregate_only_tracking_does_not_count(
    client, customer, account, newsletter, tracked
):
    services.set_tracking(account, "aggregate")
    sent(tracked, people(account, newsletter, "gmail.com", 2))
    client.force_login(customer)
    page = client.get(reverse("sending:report", args=[tracked.uuid])).content.decode()
    assert "What is not counted, and why" in page
    assert (
        "Your account tracks in aggregate only: Tidings counts opens and clicks, never who." in page
    )
    assert "Click-to-open, and opens and clicks by domain, are not counted." in page
    # No per-contact column by domain under aggregate-only tracking.
    assert '<th scope="col" class="num">Opened</th>' not in page.split('id="domains"')[1]


@pytest.mark.promise("P26")
def test_the_page_says_how_many_objected_and_what_the_campaign_did_not_ask(
    client, customer, account, newsletter, campaign
):
    services.set_tracking(account, "contact")
    contacts = people(account, newsletter, "gmail.com", 3)
    audience.set_preferences(
        contacts[0], name="", attributes={}, allow_tracking=False, allow_profiling=True
    )
    sent(campaign, contacts)
    client.force_login(customer)
    page = client.get(reverse("sending:report", args=[campaign.uuid])).content.decode()
    assert "Opens and clicks are not counted: this campaign did not ask for them" in page
    assert (
        "1 recipient objected to tracking: their opens and clicks are not counted at all." in page
    )
    assert "aggregate only" not in page


def test_the_campaign_list_shows_each_campaigns_key_rates(
    client, customer, account, newsletter, tracked
):
    services.set_tracking(account, "contact")
    deliveries = sent(tracked, people(account, newsletter, "gmail.com", 4))
    tracking.record(tokens.TrackingToken(tracked.pk, deliveries[0].pk), "open")
    Campaign.objects.create(account=account, name="Draft", subject="s", from_email="a@b.example")
    client.force_login(customer)
    page = client.get(reverse("campaigns:list")).content.decode()
    row = page.split("November news")[1].split("</tr>")[0]
    assert '<td class="num">4</td><td class="num">25.0 %</td><td class="num">0.0 %</td>' in row
    assert reverse("sending:report", args=[tracked.uuid]) in row
    draft = page.split(">Draft<")[1].split("</tr>")[0]
    assert "/report/" not in draft and "—" in draft


def test_a_click_on_a_deleted_campaigns_link_counts_nothing(account, newsletter, tracked):
    token = tokens.TrackingToken(tracked.pk, None, "https://example.org/a")
    tracking.record(token, "click")
    assert reports.clicks_per_link(tracked) == [("https://example.org/a", 1)]
    campaign_id = tracked.pk
    tracked.delete()
    tracking.record(tokens.TrackingToken(campaign_id, None, "https://example.org/a"), "click")
    assert not LinkClick.objects.filter(campaign_id=campaign_id).exists()


@pytest.mark.promise("P26")
def test_under_aggregate_only_tracking_no_rate_passes_100_percent(
    client, customer, account, newsletter, tracked
):
    """Two readers who click five times each: ten click events, two messages. Events are
    shown as counts with no rate (a share of 2 delivered would read 500 %)."""
    services.set_tracking(account, "aggregate")
    deliveries = sent(tracked, people(account, newsletter, "gmail.com", 2))
    for d in deliveries:
        for _ in range(5):
            tracking.record(tokens.TrackingToken(tracked.pk, d.pk), "open")
            tracking.record(
                tokens.TrackingToken(tracked.pk, d.pk, "https://example.org/a"), "click"
            )
    report = reports.build(tracked)
    f = by_key(report)
    assert all(x.rate is None or 0 <= x.rate <= 100 for x in report.figures)
    assert (f["opened"].count, f["opened"].rate) == (10, None)
    assert (f["clicked"].count, f["clicked"].rate) == (10, None)
    assert f["click_to_open"].rate is None
    rates = reports.key_rates([tracked])[tracked.pk]
    assert rates["open_rate"] is None and rates["click_rate"] is None
    client.force_login(customer)
    page = client.get(reverse("sending:report", args=[tracked.uuid])).content.decode()
    assert "without a rate" in page and "could pass 100 %" in page
    assert "events, no rate" in page


def test_a_click_without_the_pixel_counts_as_an_open_so_click_to_open_stays_within_100(
    account, newsletter, tracked
):
    """Images blocked: the pixel never loads, the reader clicks twice. Opened counts the
    message (a click needs it open), clicked counts it once."""
    services.set_tracking(account, "contact")
    deliveries = sent(tracked, people(account, newsletter, "gmail.com", 4))
    for _ in range(2):
        tracking.record(
            tokens.TrackingToken(tracked.pk, deliveries[0].pk, "https://example.org/a"), "click"
        )
    tracking.record(tokens.TrackingToken(tracked.pk, deliveries[1].pk), "open")
    report = reports.build(tracked)
    f = by_key(report)
    assert (f["opened"].count, f["opened"].rate) == (2, pytest.approx(50.0))
    assert (f["clicked"].count, f["clicked"].rate) == (1, pytest.approx(25.0))
    assert f["click_to_open"].rate == pytest.approx(50.0)
    assert all(x.rate is None or 0 <= x.rate <= 100 for x in report.figures)
    assert any("A click counts as an open too" in note for note in report.notes)
    rates = reports.key_rates([tracked])[tracked.pk]
    assert rates["open_rate"] == pytest.approx(50.0)
    assert rates["click_rate"] == pytest.approx(25.0)


@pytest.mark.parametrize(
    ("subject", "shown"),
    [
        (
            'News for you, {{ contact.first_name | default("friend") }}',
            "News for you, [first name]",
        ),
        ("{{contact.name}}: {% if x %}yes{% endif %} sale", "[name]: yes sale"),
        ("Plain subject", "Plain subject"),
    ],
)
def test_the_report_shows_the_subject_as_people_read_it(subject, shown):
    assert reports.readable_subject(subject) == shown


def test_the_report_page_shows_no_template_tag(client, customer, account, newsletter, tracked):
    tracked.subject = 'News for you, {{ contact.first_name | default("friend") }}'
    tracked.save()
    sent(tracked, people(account, newsletter, "gmail.com", 1))
    client.force_login(customer)
    page = client.get(reverse("sending:report", args=[tracked.uuid])).content.decode()
    assert "Subject: News for you, [first name]" in page
    assert "{{" not in page and "contact.first_name" not in page
    pdf = client.get(reverse("sending:report_export", args=[tracked.uuid, "pdf"])).content
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "[first name]" in text and "{{" not in text


def test_the_campaign_list_and_an_automation_show_subjects_as_people_read_them(client, customer):
    """Found walking the product: the automation's page showed its step's subject as
    `Welcome, {{ contact.first_name }}`; both pages now read "Welcome, [first name]"."""
    account = customer.account
    newsletter = MailingList.objects.create(account=account, name="News")
    automation = automation_services.create_automation(
        account, name="Welcome", mailing_list=newsletter, by=customer
    )
    automation_services.add_step(
        automation, wait_days=0, subject="Welcome, {{ contact.first_name }}",
        from_email="news@example.org", by=customer,
    )  # fmt: skip
    client.force_login(customer)
    for url in ("/campaigns/", f"/automations/{automation.uuid}/"):
        page = client.get(url).content.decode()
        assert "Welcome, [first name]" in page, url
        assert "{{ contact.first_name }}" not in page, url


def test_the_campaign_list_counts_a_click_without_an_open_as_the_report_does(
    account, newsletter, tracked
):
    """The report and the campaign list count opened messages one way (a click counts
    as an open): a reader whose program blocked the pixel but who clicked is opened in
    both, and the two rates agree."""
    services.set_tracking(account, "contact")
    deliveries = sent(tracked, people(account, newsletter, "example.net", 4))
    tracking.record(tokens.TrackingToken(tracked.pk, deliveries[0].pk), "open")
    tracking.record(
        tokens.TrackingToken(tracked.pk, deliveries[1].pk, "https://example.org/a"), "click"
    )
    f = by_key(reports.build(tracked))
    tracked.refresh_from_db()
    listed = reports.key_rates([tracked])[tracked.pk]
    assert f["opened"].rate == pytest.approx(50.0) == listed["open_rate"]
    assert f["clicked"].rate == pytest.approx(25.0) == listed["click_rate"]
