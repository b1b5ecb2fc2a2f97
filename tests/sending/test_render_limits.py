"""A template whose cost hides behind a condition on the contact passes the save-time
check, but cannot hold a sending worker: the message that hits the rendering limits
pauses its campaign with the reason on the campaign page, the batch ends, and other
campaigns go on (issue 13, finding 1). Before: the worker rendered it for as long as it
took (12.6 s a recipient), or until memory ran out."""

from __future__ import annotations

import re
import resource
import sys
from collections.abc import Iterator

import pytest
from django.urls import reverse

from tests.campaigns.test_render_limits import CPU_BOMB, LIMITS, MEMORY_LIMITS, NESTED_BOMB
from tests.sending.conftest import add_contacts
from tidings.campaigns import renderpool
from tidings.campaigns import services as campaigns
from tidings.campaigns.models import Campaign
from tidings.sending import lifecycle, proofs
from tidings.sending.mailer import CampaignMailer, Recipient
from tidings.sending.models import Delivery

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Not among the contacts the save-time check renders for (the account's first five).
TARGET = "reader7@example.net"


def behind_a_condition(bomb: str) -> str:
    return (
        "<p>Hello {{ contact.name }}</p>"
        f"{{% if contact.email == '{TARGET}' %}}{bomb}{{% endif %}}"
    )


@pytest.mark.parametrize(
    ("bomb", "says", "limits"),
    [
        (CPU_BOMB, "longer than 2 seconds", LIMITS),
        (NESTED_BOMB, "more than 150 MB of memory", MEMORY_LIMITS),
    ],
    ids=["cpu", "memory"],
)
def test_a_bomb_behind_a_contact_condition_pauses_its_campaign_and_holds_no_worker(
    account, customer, newsletter, raw_sink, settings, mailbox, client, bomb, says, limits
):
    settings.RENDER = limits
    add_contacts(account, newsletter, 8)
    values = {"subject": "News", "from_email": "news@news.example.org", "content_format": "html"}
    bombed = campaigns.create_campaign(
        account, by=customer, lists=[newsletter], name="Bombed", body=behind_a_condition(bomb),
        **values,
    )  # fmt: skip
    fine = campaigns.create_campaign(
        account, by=customer, lists=[newsletter], name="Fine", body="<p>Hi {{ contact.name }}</p>",
        **values,
    )  # fmt: skip

    lifecycle.start_campaign(bombed)  # the batch runs here (eager tasks) and returns

    bombed.refresh_from_db()
    assert bombed.status == Campaign.Status.PAUSED
    assert "rendering limits" in bombed.pause_reason and says in bombed.pause_reason
    assert TARGET in bombed.pause_reason
    by_contact = dict(
        Delivery.objects.filter(campaign=bombed).values_list("contact__email", "status")
    )
    # The others before it were sent; the one that hit the limit is back in the queue,
    # not failed (the customer mends the template and resumes).
    assert by_contact.pop(TARGET) == "queued"
    assert set(by_contact.values()) == {"sent"}
    assert TARGET not in [to for rcpts, _ in raw_sink.raw for to in rcpts]
    (notice,) = [m for m in mailbox if "paused" in m.subject]
    assert "render" in notice.body and says in notice.body
    client.force_login(customer)
    page = client.get(reverse("campaigns:edit", kwargs={"uuid": bombed.uuid})).content.decode()
    assert "Paused by Tidings" in page and says in page

    # The worker was not held: another campaign goes out in full.
    lifecycle.start_campaign(fine)
    fine.refresh_from_db()
    assert fine.status == Campaign.Status.SENT
    assert Delivery.objects.filter(campaign=fine, status="sent").count() == 8


def test_a_test_send_of_a_bomb_gets_a_clear_error(account, customer, newsletter, settings):
    settings.RENDER = LIMITS
    (target,) = add_contacts(account, newsletter, 8)[7:]
    campaign = campaigns.create_campaign(
        account, by=customer, name="Bombed", subject="News", from_email="news@news.example.org",
        content_format="html", body=behind_a_condition(CPU_BOMB),
    )  # fmt: skip
    with pytest.raises(campaigns.CampaignError, match="longer than 2 seconds"):
        proofs.send_test(campaign, to=[customer.email], contact=target, by=customer)


def test_a_normal_campaign_makes_the_same_bytes_in_a_render_process(account, campaign):
    mailer = CampaignMailer(campaign)
    recipients = [
        Recipient(
            delivery_id=n, message_id=f"<{n}@news.example.org>", email=f"r{n}@example.net",
            name=f"R {n}", attributes={"city": "Gent"}, uuid=f"{n:032x}", allow_tracking=True,
        )
        for n in range(1, 4)
    ]  # fmt: skip
    made = mailer.wire_many(recipients)
    assert renderpool.children()  # made in a render process, kept for the next batch
    here = [CampaignMailer(campaign).wire_for(r) for r in recipients]
    assert [comparable(m) for m in made] == [comparable(m) for m in here]


def _loaded_before_any_work() -> Iterator[list[str]]:
    yield [name for name in ("tidings.urls", "tidings.api") if name not in sys.modules]


def test_a_render_process_has_the_url_patterns_before_its_first_message():
    """Every message's links are made with reverse(): a render process forked from the
    fork server finds the URL patterns loaded (importing every app's views and the API
    took seconds on a busy machine before each render process's first message)."""
    assert renderpool.one(_loaded_before_any_work) == []


def comparable(data: bytes) -> bytes:
    """A message without what differs between two builds: its date, its MIME boundary
    and the time its signed links were signed (the two builds may be a second apart)."""
    boundary = re.search(rb'boundary="([^"]+)"', data).group(1)  # type: ignore[union-attr]
    data = re.sub(rb"\r\nDate: [^\r]*", b"", data).replace(boundary, b"BOUNDARY")
    data = data.replace(b"=\r\n", b"")  # quoted-printable's soft line breaks
    return re.sub(rb":[0-9A-Za-z]{6}:[0-9A-Za-z_-]{43}", b":SIGNED-AT:SIGNATURE", data)


def _cpu_left_after_arming() -> Iterator[float]:
    renderpool.one_message_at_most()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    yield resource.getrlimit(resource.RLIMIT_CPU)[0] - (usage.ru_utime + usage.ru_stime)


def test_a_template_run_during_a_preparation_gets_one_messages_time(settings):
    """A preparation (compiling, inlining the CSS) may take PREPARE_SECONDS, but the
    customer's template it runs to check the inlining gets one message's CPU time: a
    template too slow for one message held the preview's checklist 50 s, not 2."""
    settings.RENDER = {"timeout": 2, "memory_mb": 500, "processes": 2}
    outcome = renderpool.run(_cpu_left_after_arming, prepare=True)
    assert outcome.error is None
    assert 0 < outcome.results[0] <= 2 + 2 < renderpool.PREPARE_SECONDS
