"""The scheduler's due steps, set-based (engine.run_due): a condition evaluated in the
database says what the Python rule said (an attribute is set: present and neither null,
"" nor []; equals trims; contains ignores case; the tag), on PostgreSQL and SQLite; two
schedulers at once take disjoint chunks; the pass hands the due steps to the workers
in chunks and each chunk's dispatch starts at its own deliveries; a condition's outcome
is recorded for each contact, in as many statements for many contacts as for a few."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.automations.conftest import at_once, welcome_series
from tidings.audience import services as audience
from tidings.audience.models import Contact, MailingList
from tidings.automations import engine, services, tasks
from tidings.automations.models import Automation, Enrolment, Step, StepRun
from tidings.core import jobs
from tidings.sending.dispatcher import DISPATCH
from tidings.sending.models import Delivery

K = Step.Kind

# (test, value, the contact's attributes or tags, met)
CASES: list[tuple[str, str, dict[str, Any] | list[str], bool]] = [
    ("is_set", "", {"k": "x"}, True),
    ("is_set", "", {"k": " "}, True),
    ("is_set", "", {"k": 0}, True),
    ("is_set", "", {"k": False}, True),
    ("is_set", "", {"k": {}}, True),
    ("is_set", "", {"k": [1]}, True),
    ("is_set", "", {"k": ""}, False),
    ("is_set", "", {"k": None}, False),
    ("is_set", "", {"k": []}, False),
    ("is_set", "", {"other": "x"}, False),
    ("is_set", "", {}, False),
    ("equals", " Paris", {"k": "Paris  "}, True),
    ("equals", "Paris", {"k": "paris"}, False),
    ("equals", "3", {"k": 3}, True),
    ("equals", "", {"k": ""}, True),
    ("equals", "", {}, False),
    ("contains", "PAR", {"k": "Paris"}, True),
    ("contains", "straße", {"k": "STRASSE 1"}, True),
    ("contains", "x", {"k": "Paris"}, False),
    ("has_tag", "vip", ["vip", "new"], True),
    ("has_tag", "vip", ["VIP"], False),
    ("has_tag", "vip", [], False),
]


@pytest.mark.django_db
def test_a_condition_run_set_based_says_what_the_rule_says(account, customer):
    steps: list[Step] = []
    for n, (test, value, facts, _met) in enumerate(CASES):
        # One automation per case, on a list of its own with one contact: the
        # condition, then a tag for those who met it (the others leave).
        own = MailingList.objects.create(account=account, name=f"Case {n}")
        flow = services.create_automation(account, name=f"Case {n}", mailing_list=own, by=customer)
        steps.append(
            services.add_step(
                flow,
                kind=K.CONDITION,
                test=test,
                key="k" if test != "has_tag" else value,
                value=value,
                by=customer,
            )
        )
        services.add_step(flow, kind=K.ADD_TAG, tag="met", by=customer)
        services.start(flow, by=customer)
        contact = audience.add_contact(account, f"case{n}@example.net", lists=[own])
        fields = {"tags": facts} if test == "has_tag" else {"attributes": facts}
        Contact.objects.filter(pk=contact.pk).update(**fields)
    engine.run(timezone.now())
    for (test, value, facts, met), step in zip(CASES, steps, strict=True):
        enrolment = Enrolment.objects.get(automation=step.automation)
        contact = Contact.objects.get(pk=enrolment.contact_id)
        assert StepRun.objects.filter(step=step, contact=contact).exists(), (test, facts)
        said = "met" in contact.tags
        assert said == met, f"{test} {value!r} on {facts!r}: {said}, not {met}"
        assert enrolment.status == (Enrolment.Status.DONE if met else Enrolment.Status.EXITED)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_schedulers_at_once_take_disjoint_chunks(
    account, newsletter, customer, mailoutbox, monkeypatch
):
    contacts = 40
    automation = welcome_series(account, newsletter, customer, waits=(0, 1))
    services.start(automation, by=customer)
    for i in range(contacts):
        audience.add_contact(account, f"reader{i}@example.net", lists=[newsletter])
    now = timezone.now()
    engine.run(now)  # everyone enters and gets the first step
    # Each scheduler waits, its chunk locked, until the other has locked its own: had
    # the second waited on the first's rows instead of skipping them, neither would
    # get past the barrier.
    both = threading.Barrier(2, timeout=20)
    hold = engine._hold

    def held(automation_id: int) -> bool:
        both.wait()
        return hold(automation_id)

    monkeypatch.setattr(engine, "_hold", held)
    results: list[tuple[int, int]] = []

    def scheduler() -> None:
        results.append(engine.run_due(now + timedelta(days=1, seconds=1), limit=contacts // 2))

    errors = at_once(scheduler)
    assert errors == []
    assert results == [(contacts // 2, contacts // 2)] * 2
    assert StepRun.objects.count() == Delivery.objects.count() == 2 * contacts
    assert set(Enrolment.objects.values_list("status", flat=True)) == {Enrolment.Status.DONE}


@pytest.mark.django_db
def test_the_pass_hands_the_due_steps_to_the_workers_in_chunks_and_runs_none_itself(
    account, newsletter, customer, monkeypatch
):
    """The scheduler's pass finds the due enrolments and queues one job per chunk of an
    automation's, oldest due first, without locking or writing anything; each job runs
    its chunk once, however often it is delivered."""
    automation = services.start(welcome_series(account, newsletter, customer, (0, 0)), by=customer)
    other = services.start(welcome_series(account, newsletter, customer, (0,)), by=customer)
    for i in range(5):
        audience.add_contact(account, f"reader{i}@example.net", lists=[newsletter])
    now = timezone.now()
    for flow in (automation, other):
        engine.enter(flow, now)
    Enrolment.objects.filter(automation=automation, contact__email="reader4@example.net").update(
        due_at=now - timedelta(hours=1)
    )
    handed: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr(jobs, "send_now", lambda name, *args, **kw: handed.append((name, args)))
    with override_settings(AUTOMATIONS_CHUNK=2), CaptureQueriesContext(connection) as queries:
        outcome = engine.run(now)
    assert outcome.queued == 10
    assert not [q for q in queries if "FOR UPDATE" in q["sql"] or "INSERT" in q["sql"]]
    assert not StepRun.objects.exists() and not Delivery.objects.exists()
    assert {name for name, _ in handed} == {engine.STEPS}
    chunks = [ids for _, (ids, _at) in handed]
    assert sorted(len(ids) for ids in chunks) == [1, 1, 2, 2, 2, 2]
    of = dict(Enrolment.objects.values_list("pk", "automation_id"))
    assert all(len({of[pk] for pk in ids}) == 1 for ids in chunks)  # one automation each
    first = Enrolment.objects.get(automation=automation, contact__email="reader4@example.net")
    assert chunks[0][0] == first.pk  # the oldest due first

    for ids, moment in [args for _, args in handed] * 2:  # each job delivered twice
        tasks.run_steps(ids, moment)
    assert StepRun.objects.count() == 5 * 2 + 5 * 1
    assert Delivery.objects.count() == 15
    assert set(Enrolment.objects.values_list("status", flat=True)) == {Enrolment.Status.DONE}


@pytest.mark.django_db
def test_each_chunk_dispatches_its_messages_from_its_first_delivery(
    account, newsletter, customer, monkeypatch
):
    """A chunk's dispatch job starts at the first delivery it added (`after`), so the
    chunks of a million due steps do not each read the message's earlier deliveries;
    together they cover every delivery."""
    automation = welcome_series(account, newsletter, customer, waits=(0, 0))
    services.start(automation, by=customer)
    for i in range(5):
        audience.add_contact(account, f"reader{i}@example.net", lists=[newsletter])
    queued: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(jobs, "enqueue", lambda name, *args, **kw: queued.append((name, args, kw)))
    with override_settings(AUTOMATIONS_CHUNK=2):  # three chunks
        engine.run(timezone.now())
    assert StepRun.objects.count() == 10  # both steps, each contact: the second due at once
    dispatched: dict[int, list[int]] = {}
    for name, args, kw in queued:
        if name == DISPATCH:
            dispatched.setdefault(args[0], []).append(kw["after"])
    for campaign_id, afters in dispatched.items():
        ids = sorted(Delivery.objects.filter(campaign_id=campaign_id).values_list("pk", flat=True))
        firsts = sorted(after + 1 for after in afters)
        assert len(firsts) == 3 and firsts[0] == ids[0]
        assert set(firsts) <= set(ids)  # each the first of its own chunk's
    assert sorted(dispatched) == sorted(
        Step.objects.filter(automation=automation).values_list("campaign_id", flat=True)
    )
    assert Delivery.objects.count() == 10


@pytest.mark.django_db
def test_a_pass_in_one_process_queues_one_dispatch_job_per_message(
    account, newsletter, customer, monkeypatch
):
    automation = services.start(welcome_series(account, newsletter, customer, (0, 0)), by=customer)
    for i in range(5):
        audience.add_contact(account, f"reader{i}@example.net", lists=[newsletter])
    now = timezone.now()
    engine.enter(automation, now)
    queued: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(jobs, "enqueue", lambda name, *args, **kw: queued.append((name, args, kw)))
    with override_settings(AUTOMATIONS_CHUNK=2):  # three chunks
        assert engine.run_all_due(now) == (5, 10)
    firsts = {
        campaign_id: Delivery.objects.filter(campaign_id=campaign_id).order_by("pk")[0].pk
        for campaign_id in Step.objects.filter(automation=automation).values_list(
            "campaign_id", flat=True
        )
    }
    assert sorted((args[0], kw["after"] + 1) for name, args, kw in queued if name == DISPATCH) == (
        sorted(firsts.items())
    )


def plans_flow(account: Any, mailing_list: MailingList, by: Any) -> tuple[Automation, Step, Step]:
    """A tag for everyone, then a condition (the plan is "pro"), then a tag for those
    who met it (the others leave), started: it, its first step and its condition."""
    flow = services.create_automation(account, name="Plans", mailing_list=mailing_list, by=by)
    first = services.add_step(flow, kind=K.ADD_TAG, tag="seen", by=by)
    condition = services.add_step(
        flow, kind=K.CONDITION, test="equals", key="plan", value="pro", by=by
    )
    services.add_step(flow, kind=K.ADD_TAG, tag="pro", by=by)
    return services.start(flow, by=by), first, condition


@pytest.mark.django_db
def test_a_condition_records_for_each_contact_whether_it_was_met(account, newsletter, customer):
    """The outcome is written with the condition's runs (`StepRun.met`), on PostgreSQL
    and on SQLite; the other steps' runs leave it empty."""
    flow, first, condition = plans_flow(account, newsletter, customer)
    plans = {f"reader{i}@example.net": p for i, p in enumerate(["pro", "free", "pro", "", "x"])}
    for email, plan in plans.items():
        audience.add_contact(account, email, attributes={"plan": plan}, lists=[newsletter])
    now = timezone.now()
    engine.enter(flow, now)
    assert engine.run_due(now) == (5, 5 + 5 + 2)  # taken; the steps run
    met = dict(StepRun.objects.filter(step=condition).values_list("contact__email", "met"))
    assert met == {email: plan == "pro" for email, plan in plans.items()}
    assert list(StepRun.objects.filter(step=first).values_list("met", flat=True)) == [None] * 5
    assert sorted(Enrolment.objects.values_list("status", flat=True)) == sorted(
        [Enrolment.Status.DONE] * 2 + [Enrolment.Status.EXITED] * 3
    )


@pytest.mark.django_db
def test_recording_a_conditions_outcome_takes_as_many_statements_for_many_contacts(
    account, customer
):
    statements = []
    for contacts in (2, 12):
        own = MailingList.objects.create(account=account, name=f"{contacts} readers")
        flow, _, condition = plans_flow(account, own, customer)
        for i in range(contacts):
            plan = "pro" if i % 2 else "free"
            email = f"r{i}-of-{contacts}@example.net"
            audience.add_contact(account, email, attributes={"plan": plan}, lists=[own])
        now = timezone.now()
        engine.enter(flow, now)
        with CaptureQueriesContext(connection) as queries:
            engine.run_due(now)
        statements.append(len(queries))
        assert StepRun.objects.filter(step=condition, met=True).count() == contacts // 2
    assert statements[0] == statements[1]
