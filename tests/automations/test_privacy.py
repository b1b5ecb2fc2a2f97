"""Automations in the data map: the customer's archive holds them (P20), the contact
sees which automations they are in and which steps ran for them (a condition's outcome
too), and erasing a contact leaves nothing of them there."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from django.utils import timezone

from tidings.audience import rights
from tidings.audience import services as audience
from tidings.automations import engine, services
from tidings.automations.models import Enrolment, Step, StepRun
from tidings.privacy.archive import write_archive


@pytest.fixture(autouse=True)
def _archive_dir(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.ACCOUNT_EXPORT_DIR = tmp_path / "archives"


@pytest.fixture
def running(account, newsletter, welcome, customer, mailbox):  # type: ignore[no-untyped-def]
    services.start(welcome, by=customer)
    contact = audience.add_contact(account, "ada@example.net", name="Ada", lists=[newsletter])
    engine.run(timezone.now())
    return contact


@pytest.mark.promise("P20")
def test_the_archive_holds_the_automations_their_steps_and_who_is_in_them(
    running, account, other_customer, tmp_path
):
    path = tmp_path / "all.zip"
    counts = write_archive(account, "csv", path)
    assert counts["automations"] == 1 and counts["automation-steps"] == 2
    assert counts["automation-enrolments"] == 1 and counts["automation-steps-done"] == 1
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert {
            "automations.csv",
            "automation-steps.csv",
            "automation-enrolments.csv",
            "automation-steps-done.csv",
        } <= names
        assert "Welcome" in archive.read("automations.csv").decode("utf-8-sig")
    theirs = write_archive(other_customer.account, "csv", tmp_path / "theirs.zip")
    assert not any(count for table, count in theirs.items() if "automation" in table)


def test_the_contact_sees_the_automations_they_are_in_and_erasure_removes_them(running):
    titles = [str(section.title) for section in rights.contact_data(running)]
    assert "Automations you are in" in titles and "Automation steps done for you" in titles
    audience.erase_contact(running)
    assert not Enrolment.objects.exists() and not StepRun.objects.exists()


@pytest.mark.promise("P20")
def test_the_contact_and_the_archive_see_whether_a_condition_was_met(
    account, newsletter, customer, tmp_path
):
    flow = services.create_automation(account, name="VIP", mailing_list=newsletter, by=customer)
    services.add_step(flow, kind=Step.Kind.CONDITION, test="has_tag", key="vip", by=customer)
    services.add_step(flow, kind=Step.Kind.ADD_TAG, tag="welcomed", by=customer)
    services.start(flow, by=customer)
    ada = audience.add_contact(account, "ada@example.net", tags=["vip"], lists=[newsletter])
    engine.run(timezone.now())
    (done,) = [s for s in rights.contact_data(ada) if s.title == "Automation steps done for you"]
    met = done.columns.index("condition met")
    by_step = {row[done.columns.index("step")]: row[met] for row in done.rows}
    assert by_step == {0: "yes", 1: ""}  # the condition met; the tag step has no outcome
    write_archive(account, "csv", tmp_path / "all.zip")
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        done_csv = archive.read("automation-steps-done.csv").decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(done_csv)))
        readme = archive.read("README.txt").decode()
    assert [row["met"] for row in sorted(rows, key=lambda row: int(row["step_id"]))] == ["yes", ""]
    assert "met: condition met (a condition's outcome; empty for the other" in readme
