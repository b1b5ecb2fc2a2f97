"""The web benchmark's side in Django (bench/web_load.py runs it as a child process):
Django is configured on the bench database (with bench/web_settings.py, from the
environment the parent gives) before anything of Tidings is imported.

    python bench/web_child.py setup N | drain | recorded CAMPAIGN ACCOUNT FORM_PATH
                              | costs N < paths.json
"""

from __future__ import annotations

import json
import sys
import time
import urllib.parse

import benchdb

benchdb.setup()

# Django is configured just above: the rest may be imported now.
from django.db import connection  # noqa: E402
from django.db.models import Sum  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from web_load import BARE, COST_SAMPLES, FLOOR  # noqa: E402

from tidings.accounts.models import Account  # noqa: E402
from tidings.audience import links  # noqa: E402
from tidings.audience.models import Contact, MailingList, Subscription, SubscriptionForm  # noqa: E402
from tidings.campaigns.models import Campaign  # noqa: E402
from tidings.consent import services as consent  # noqa: E402
from tidings.consent.models import PageView  # noqa: E402
from tidings.sending import tokens, tracking  # noqa: E402
from tidings.sending.limits import shared_redis  # noqa: E402
from tidings.sending.models import CampaignStat, Delivery, SendingSettings, TrackingEvent  # noqa: E402


def setup(n: int) -> dict:
    """A customer with `n` contacts on a public single opt-in list, a form, and a campaign
    sent to them with tracking on; returns the paths each endpoint is driven with."""
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE audience_contact, audience_subscription, audience_consentproof, "
            "audience_mailinglist, audience_subscriptionform, campaigns_campaign, "
            "sending_delivery, sending_campaignstat, sending_trackingevent, "
            "consent_pageview, sending_trackingstreammark, sending_linkclick CASCADE"
        )
        cursor.execute("DROP TABLE IF EXISTS bench_web_floor")
        cursor.execute("CREATE TABLE bench_web_floor (id int PRIMARY KEY, n bigint NOT NULL)")
        cursor.execute("INSERT INTO bench_web_floor SELECT i, 0 FROM generate_series(0, 999) i")
    # Opens and clicks of an earlier run still queued are not this run's.
    if (stream := shared_redis()) is not None:
        stream.delete(tracking.STREAM)
        # Page views of an earlier run still in Redis are not this run's either.
        batches = [key.decode() for key in stream.smembers(consent.PAGE_VIEW_BATCHES)]  # type: ignore[union-attr]
        stream.delete(consent.PAGE_VIEWS, consent.PAGE_VIEW_BATCHES, *batches)
    now = timezone.now()
    account = Account.objects.create(name="Bench web")
    SendingSettings.objects.create(account=account, postal_address="1 Bench Street, 1000 City")
    newsletter = MailingList.objects.create(
        account=account, name="Newsletter", visibility="public", optin="single"
    )
    form = SubscriptionForm.objects.create(
        account=account, name="Sign up", consent_text="Yes, send me the newsletter."
    )
    form.lists.add(newsletter)
    contacts = Contact.objects.bulk_create(
        Contact(account=account, email=f"reader{i}@example.org", name=f"Reader {i}")
        for i in range(n)
    )
    Subscription.objects.bulk_create(
        Subscription(contact=c, mailing_list=newsletter, confirmed_at=now) for c in contacts
    )
    campaign = Campaign.objects.create(
        account=account,
        name="Bench",
        subject="Bench",
        from_email="news@example.org",
        # A click link redirects only to a site the campaign's content names.
        body='<p>Hello, read <a href="https://example.org/article">the article</a>.</p>',
        status=Campaign.Status.SENT,
        track_opens=True,
        track_clicks=True,
        started_at=now,
        finished_at=now,
    )
    campaign.lists.add(newsletter)
    deliveries = Delivery.objects.bulk_create(
        Delivery(campaign=campaign, contact=c, status="sent", sent_at=now) for c in contacts
    )

    def path(url: str) -> str:
        return urllib.parse.urlsplit(url).path

    # The account tracks in aggregate (the default): the engine's links then name the
    # campaign only, never the delivery.
    aggregate = SendingSettings.objects.get(account=account).tracking == "aggregate"
    ids = [None if aggregate else d.pk for d in deliveries]
    url = "https://example.org/article"
    return {
        "campaign": campaign.pk,
        "account": account.pk,
        "open": [path(_reverse("sending:open", tokens.open_token(campaign.pk, i)))
                 for i in ids],
        "click": [path(_reverse("sending:click", tokens.click_token(campaign.pk, i, url)))
                  for i in ids],
        "unsubscribe": [
            path(_reverse("sending:unsubscribe",
                          tokens.unsubscribe_token(str(c.uuid), campaign.pk)))
            for c in contacts
        ],
        "preferences": [path(links.preference_url(c)) for c in contacts],
        "form": path(_reverse("audience:subscribe", str(form.uuid))),
    }  # fmt: skip


def _reverse(name: str, arg: str) -> str:
    return reverse(name, args=[arg])


def drain() -> dict:
    """Write what the stream of opens and clicks holds (the worker's task, run here until
    the stream is empty): its entries, wall time and CPU time."""
    queued = tracking.stream_length()
    wall, cpu = time.perf_counter(), time.process_time()
    handled = tracking.drain()
    return {
        "queued": queued,
        "handled": handled,
        "seconds": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "left": tracking.stream_length(),
    }


def recorded(campaign_id: int, account_id: int, form_path: str) -> dict:
    """What the database holds after the run: the events each endpoint records, and the
    page views (once those counted in Redis are written, as the worker's task does)."""
    consent.flush_page_views()

    def views(path: str) -> int:
        return PageView.objects.filter(path=path).aggregate(n=Sum("count"))["n"] or 0

    def stat(kind: str) -> int:
        counted = CampaignStat.objects.filter(campaign_id=campaign_id, kind=kind).aggregate(
            n=Sum("count")
        )["n"]
        events = TrackingEvent.objects.filter(campaign_id=campaign_id, kind=kind).count()
        return (counted or 0) + events

    contacts = Contact.objects.filter(account_id=account_id)
    return {
        "open": stat("open"),
        "click": stat("click"),
        "unsubscribe": contacts.filter(status="unsubscribed").count(),
        "unsubscribe_counted": stat("unsubscribe"),
        "form_post": contacts.filter(source="form").count(),
        "page_views_preferences": views("/p/<str:token>/"),
        "page_views_form": views(form_path),
    }


def costs(paths: dict, n: int) -> dict:
    """What one request of each endpoint costs, measured in this process with Django's
    test client (no server, no other client): database statements, and CPU time of the
    Python side. Unlike the rates, these do not follow the machine's load."""
    client = Client(HTTP_HOST="127.0.0.1")
    body = {"email": "", "name": "Cost", "consent": "on"}
    calls = {
        "open pixel": lambda i: client.get(paths["open"][n + i]),
        "click redirect": lambda i: client.get(paths["click"][n + i]),
        "one-click unsubscribe (POST)": lambda i: client.post(
            paths["unsubscribe"][n + i], {"List-Unsubscribe": "One-Click"}
        ),
        "preference page": lambda i: client.get(paths["preferences"][n + COST_SAMPLES + 2 + i]),
        "hosted form (GET)": lambda i: client.get(paths["form"]),
        "hosted form (POST)": lambda i: client.post(
            paths["form"], {**body, "email": f"cost{i}@example.org"}
        ),
        "bare Django view": lambda i: client.get(BARE),
        "bare view + 1 statement": lambda i: client.get(FLOOR),
    }
    found = {}
    # Every endpoint once before any is measured: the first measured no longer pays the
    # process's own warm-up (its imports, its connections).
    for call in calls.values():
        call(0)
    for name, call in calls.items():
        with CaptureQueriesContext(connection) as queries:
            call(1)
        # Now: each request starts by emptying the log the count is read from.
        statements = len(queries.captured_queries)
        start = time.process_time()
        for i in range(2, COST_SAMPLES + 2):
            call(i)
        cpu = (time.process_time() - start) / COST_SAMPLES * 1000
        found[name] = {"queries": statements, "cpu_ms": cpu}
    return found


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        print(json.dumps(setup(int(sys.argv[2]))))
    elif sys.argv[1] == "costs":
        print(json.dumps(costs(json.loads(sys.stdin.read()), int(sys.argv[2]))))
    elif sys.argv[1] == "drain":
        print(json.dumps(drain()))
    elif sys.argv[1] == "recorded":
        print(json.dumps(recorded(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])))
    else:
        sys.exit(f"unknown step {sys.argv[1]!r}")
