"""What the closing mail says about the archive links is what happens: links stop working
at closing (every page of a closed account leads to reopening it), work again after
reopening until the archive's own expiry, and with "erase now" the archives are erased."""

from __future__ import annotations

import zipfile
from datetime import timedelta

import pytest
from django.urls import reverse

from tests.factories import populate_account
from tidings.accounts import services as accounts
from tidings.core.spreadsheets import FORMULA_NOTE
from tidings.privacy import portability
from tidings.privacy.archive import write_archive
from tidings.privacy.models import AccountExport
from tidings.privacy.services import erase_account


@pytest.fixture(autouse=True)
def _archive_dir(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.ACCOUNT_EXPORT_DIR = tmp_path / "archives"


@pytest.fixture
def archive(customer, mailbox):  # type: ignore[no-untyped-def]
    populate_account(customer.account)
    export = portability.request_account_export(customer.account, by=customer, fmt="csv")
    export.refresh_from_db()
    assert export.is_downloadable
    mailbox.clear()
    return export


def _closing_mail(mailbox):  # type: ignore[no-untyped-def]
    (mail,) = [m for m in mailbox if "closed" in m.subject.lower()]
    return mail.body


def test_the_closing_mail_says_the_link_stops_and_comes_back_until_expiry_and_so_it_does(
    client, customer, archive, mailbox, time_machine
):
    url = reverse("accounts:download_export", args=[archive.pk])
    accounts.close_account(customer.account, by=customer)
    body = _closing_mail(mailbox)
    assert "Links to archives of all your data stop working now" in body
    assert f"{archive.created_at:%-d %B %Y}" in body
    assert f"until {archive.expires_at:%-d %B %Y, %H:%M} UTC" in body

    client.force_login(customer)
    stopped = client.get(url)
    assert stopped.status_code == 302 and stopped["Location"] == reverse("accounts:closed")

    accounts.reopen_account(customer.account, by=customer)
    assert client.get(url).status_code == 200  # works again...
    time_machine.move_to(archive.expires_at + timedelta(minutes=1))
    client.force_login(customer)  # the session ended meanwhile
    assert client.get(url).status_code == 410  # ...until it expires, as the mail said


def test_erase_now_says_the_archives_are_erased_and_they_are(customer, archive, mailbox):
    path = portability.archive_path(archive.file)
    accounts.close_account(customer.account, by=customer, erase_now=True)
    body = _closing_mail(mailbox)
    assert "erased with it: its link no longer works" in body
    erase_account(customer.account_id)
    assert not AccountExport.objects.filter(pk=archive.pk).exists() and not path.exists()


def test_without_a_ready_archive_the_mail_says_nothing_of_links(customer, mailbox):
    accounts.close_account(customer.account, by=customer)
    assert "archive" not in _closing_mail(mailbox)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "xls"])
def test_the_archive_readme_states_its_format_s_formula_rule(customer, tmp_path, fmt):
    path = tmp_path / "all.zip"
    write_archive(customer.account, fmt, path)
    with zipfile.ZipFile(path) as archive:
        readme = " ".join(archive.read("README.txt").decode().split())
    assert FORMULA_NOTE[fmt] in readme
    others = [note for other, note in FORMULA_NOTE.items() if other != fmt]
    assert not any(note in readme for note in others)
