"""Automations in the data map: the customer's archive holds them (P20), the contact
sees which automations they are in, and erasing a contact leaves nothing of them there."""

from __future__ import annotations

import zipfile

import pytest
from django.utils import timezone

from tidings.audience import rights
from tidings.audience import services as audience
from tidings.automations import engine, services
from tidings.automations.models import Enrolment, StepRun
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
