"""A template cannot exhaust the memory or the CPU of the process that renders it
(issue 13, finding 1). Before: the sandbox checked a value's size after building it
(`([x]*2000)|string` grew a web worker by 377 MB), counted loop steps but not their cost
(forty sorts of 100,000 items held a worker 16 s), and had no clock. Now the sandbox
refuses repetitions by what they hold, and every render runs in a render process
(campaigns.renderpool) killed past TIDINGS_RENDER_TIMEOUT or TIDINGS_RENDER_MEMORY_MB;
the preview, the test send and the save-time check say so clearly."""

from __future__ import annotations

import os
import resource

import pytest
from django.urls import reverse

from tidings.campaigns import rendering, renderpool, services
from tidings.campaigns.models import Campaign
from tidings.campaigns.sandbox import TemplateError, compile_template, run

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# The memory bomb: a list of 2,000 references to one 200,000-character string,
# printed (400 MB, or 40 GB with 200,000 references).
MEMORY_BOMB = "{% set x = 'a' * 200000 %}{{ ([x] * 2000) | string | length }}"
# Within every size cap of the sandbox, but printing it makes a 200 MB string: only the
# render process's memory limit stops it.
NESTED_BOMB = (
    "{% set x = 'a' * 200000 %}{% set a = [x, x, x, x, x, x, x, x, x, x] %}"
    "{% set b = [a, a, a, a, a, a, a, a, a, a] %}{% set c = [b, b, b, b, b, b, b, b, b, b] %}"
    "{{ c }}"
)
# The CPU bomb: forty sorts of 100,000 items, 40 loop steps in all.
CPU_BOMB = (
    "{% set x = ('a' * 100000) | list %}"
    "{% for i in range(40) %}{% set y = x | sort %}{% endfor %}done"
)
# Small limits, so that the tests are quick; the memory bomb gets a generous clock, so
# that the memory limit (not the clock) is what stops it on a busy machine.
LIMITS = {"timeout": 2, "memory_mb": 150, "processes": 2}
MEMORY_LIMITS = LIMITS | {"timeout": 60}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture
def small_limits(settings):  # type: ignore[no-untyped-def]
    settings.RENDER = LIMITS
    return LIMITS


@pytest.fixture
def logged_in(client, customer):  # type: ignore[no-untyped-def]
    client.force_login(customer)
    return client


def saved_as_is(customer, body: str) -> Campaign:  # type: ignore[no-untyped-def]
    """A campaign holding `body`, written without the save-time check (as one whose
    cost depends on the contact gets past it)."""
    return Campaign.objects.create(
        account=customer.account,
        name="Bomb",
        subject="Hello {{ contact.first_name }}",
        from_email="news@acme.example",
        content_format=Campaign.Format.HTML,
        body=body,
    )


def test_the_sandbox_refuses_a_repetition_by_what_it_holds_before_building_it():
    before = peak_rss_mb()
    with pytest.raises(TemplateError) as caught:
        run(compile_template(MEMORY_BOMB, html=True), {})
    assert "repeating" in str(caught.value) and caught.value.limit
    for nested in ("{{ [[x]] * 2000 }}", "{{ ([x] + [x]) * 1000 }}", "{{ x.encode() * 1000 }}"):
        with pytest.raises(TemplateError, match="grow past"):
            run(compile_template("{% set x = 'a' * 200000 %}" + nested, html=True), {})
    assert peak_rss_mb() - before < 100
    # Small repetitions still work as they did.
    assert run(compile_template("{{ ['ab'] * 3 }} {{ 'ab' * 3 }}", html=False), {}) == (
        "['ab', 'ab', 'ab'] ababab"
    )


@pytest.mark.parametrize(
    ("body", "says", "limits"),
    [
        (MEMORY_BOMB, "repeating would grow past", LIMITS),
        (NESTED_BOMB, "more than 150 MB of memory", MEMORY_LIMITS),
        (CPU_BOMB, "longer than 2 seconds", LIMITS),
    ],
    ids=["repetition", "memory", "cpu"],
)
def test_a_bomb_in_the_preview_gets_a_clear_error_and_the_web_process_stays_small(
    logged_in, customer, settings, body, says, limits
):
    settings.RENDER = limits
    campaign = saved_as_is(customer, body)
    before = peak_rss_mb()
    page = logged_in.get(reverse("campaigns:preview", kwargs={"uuid": campaign.uuid}))
    text = page.content.decode()
    assert page.status_code == 200
    assert "This campaign cannot be rendered" in text and says in text
    frame = logged_in.get(reverse("campaigns:preview_html", kwargs={"uuid": campaign.uuid}))
    assert frame.status_code == 422 and says in frame.content.decode()
    # The work happened, and was stopped, in a render process: this one did not grow.
    assert peak_rss_mb() - before < 100


def test_a_render_process_killed_by_the_clock_is_replaced(customer, small_limits):
    campaign = saved_as_is(customer, CPU_BOMB)
    warm = Campaign(subject="x", body="warm", content_format="html")
    rendering.render(warm, rendering.sample_contact())
    before = set(renderpool.children())
    with pytest.raises(TemplateError, match="longer than 2 seconds") as caught:
        rendering.render(campaign, rendering.sample_contact())
    assert caught.value.limit
    # The one that ran the bomb is gone (killed), and the next render gets another.
    after = set(renderpool.children())
    assert before and not after >= before
    fine = Campaign(subject="Hi {{ contact.name }}", body="<p>ok</p>", content_format="html")
    assert rendering.render(fine, rendering.sample_contact()).subject == "Hi Alex Sample"


def test_the_save_time_check_tries_the_template_against_the_limits(customer, settings):
    for body, says, limits in (
        (NESTED_BOMB, "MB of memory", MEMORY_LIMITS),
        (CPU_BOMB, "longer than 2 seconds", LIMITS),
    ):
        settings.RENDER = limits
        with pytest.raises(services.InvalidTemplates) as caught:
            services.create_campaign(
                customer.account,
                by=customer,
                name="Bomb",
                subject="Hello",
                from_email="news@acme.example",
                content_format="html",
                body=body,
            )
        assert says in caught.value.problems["body"]
    assert not Campaign.objects.exists()  # nothing was saved


def test_a_normal_campaign_renders_the_same_in_a_render_process(customer):
    campaign = Campaign(
        account=customer.account,
        name="News",
        subject="News for {{ contact.first_name }}",
        preheader="Fresh",
        from_email="news@acme.example",
        content_format=Campaign.Format.MARKDOWN,
        body="# Hello {{ contact.name }}\n\n{% for i in range(3) %}- item {{ i }}\n{% endfor %}",
    )
    contact = rendering.sample_contact()
    in_pool = rendering.render(campaign, contact, postal_address="1 Road")
    assert renderpool.children()  # it was rendered in a render process, kept warm
    context = {
        "contact": rendering.contact_context(contact),
        "campaign": rendering.campaign_context(campaign, postal_address="1 Road"),
        **rendering.DEFAULT_LINKS,
    }
    assert in_pool == rendering.prepare(campaign).render(context)
    assert "Hello Alex Sample" in in_pool.html and "item 2" in in_pool.text


def test_the_render_processes_stop_cleanly_and_come_back_when_needed():
    assert rendering.render_string("{{ 1 }}", {}, html=False) == "1"
    pids = renderpool.children()
    assert pids
    renderpool.shutdown()  # as at exit
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # gone, and reaped: no zombie left behind
    assert renderpool.children() == []
    assert rendering.render_string("{{ 1 + 1 }}", {}, html=False) == "2"
