"""Closing an account and erasing it (P13, P14, P17, P19, P21)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory, populate_account
from tidings.accounts import services
from tidings.accounts.models import Account, User
from tidings.billing.models import Invoice
from tidings.privacy import services as privacy
from tidings.privacy.models import CollectionRecord, ErasureRecord, SuppressedEmail
from tidings.privacy.tasks import delete_expired_legal_holds, erase_due_accounts
from tidings.staff.models import AuditEvent


@pytest.fixture
def invoice(customer):
    return Invoice.objects.create(
        account=customer.account,
        number="2026-0001",
        amount_cents=4900,
        billing_name="Ada Lovelace",
        billing_address="12 Analytical Row, London",
    )


@pytest.mark.promise("P13", "P21")
def test_closing_stops_processing_at_once_and_mails_the_erasure_date(
    client, customer, password, mailbox, time_machine
):
    time_machine.move_to("2026-03-01 12:00Z", tick=False)
    client.force_login(customer)
    response = client.post(reverse("accounts:close"), {"password": password})
    assert response.status_code == 302 and response.url == reverse("accounts:closed")
    account = Account.objects.get(pk=customer.account_id)
    assert account.status == "closed" and not account.is_processing_allowed
    assert account.erase_after.date().isoformat() == "2026-04-15"  # 45 days
    assert account.erase_deadline.date().isoformat() == "2026-04-30"  # 60 days
    mail = mailbox[-1]
    assert "15 April 2026" in mail.subject and "15 April 2026" in mail.body
    assert "30 April 2026" in mail.body and "reopen" in mail.body
    # Everything but the closed page is out of reach now.
    assert client.get(reverse("accounts:edit_profile")).url == reverse("accounts:closed")
    page = client.get(reverse("accounts:closed")).content.decode()
    assert "15 April 2026" in page


@pytest.mark.promise("P21")
@pytest.mark.parametrize(
    "page",
    [
        "audience:contacts",
        "audience:segments",
        "campaigns:list",
        "campaigns:new",
        "transfer:imports",
        "transfer:exports",
        "sending:settings",
        "accounts:api_keys",
        "accounts:my_account",
        "accounts:processing",
        "accounts:change_password",
    ],
)
def test_a_closed_accounts_pages_lead_to_the_closing_page_until_it_is_reopened(
    client, customer, password, mailbox, page
):
    client.force_login(customer)
    client.post(reverse("accounts:close"), {"password": password})
    assert client.get(reverse(page)).url == reverse("accounts:closed")
    header = client.get(reverse("accounts:closed")).content.decode().split("</header>")[0]
    assert "My Account" in header and "Log out" in header
    assert not any(link in header for link in ("Audience", "Campaigns", "Import", "Export"))
    client.post(reverse("accounts:reopen"))
    assert client.get(reverse(page)).status_code == 200
    header = client.get(reverse(page)).content.decode().split("</header>")[0]
    assert all(link in header for link in ("Audience", "Campaigns", "Import", "Export"))


@pytest.mark.promise("P13")
def test_closing_needs_the_password(client, customer, mailbox):
    client.force_login(customer)
    response = client.post(reverse("accounts:close"), {"password": "not it"})
    assert b"not correct" in response.content
    assert Account.objects.get(pk=customer.account_id).status == "active" and not mailbox


@pytest.mark.promise("P13")
def test_closing_page_explains_the_grace_period_and_offers_erase_now(client, customer):
    client.force_login(customer)
    page = client.get(reverse("accounts:close")).content.decode()
    assert (
        "45 days" in page and "60" in page and "Erase now" in page.replace("erase now", "Erase now")
    )


@pytest.mark.promise("P13")
def test_the_customer_can_reopen_during_the_grace_period(client, customer, password, mailbox):
    client.force_login(customer)
    client.post(reverse("accounts:close"), {"password": password})
    client.post(reverse("accounts:reopen"))
    account = Account.objects.get(pk=customer.account_id)
    assert account.status == "active" and account.erase_after is None
    assert "open again" in mailbox[-1].subject
    assert erase_due_accounts() == 0


@pytest.mark.promise("P13", "P17")
def test_the_scheduled_job_erases_after_the_grace_period_not_before(
    customer, invoice, mailbox, time_machine
):
    time_machine.move_to("2026-03-01 12:00Z", tick=False)
    services.close_account(customer.account, by=customer)
    time_machine.move_to("2026-04-14 12:00Z", tick=False)
    assert erase_due_accounts() == 0
    assert User.objects.filter(pk=customer.pk).exists()
    time_machine.move_to("2026-04-15 13:00Z", tick=False)
    assert erase_due_accounts() == 1
    assert not User.objects.filter(pk=customer.pk).exists()
    assert not Account.objects.filter(pk=customer.account_id).exists()
    assert not CollectionRecord.objects.filter(account_id=customer.account_id).exists()
    record = ErasureRecord.objects.get(account_ref=customer.account_id)
    assert record.finished_at <= record.deadline
    assert record.counts["deleted accounts.User"] == 1
    assert record.notice_to == ""
    # The last address is told (P19).
    assert mailbox[-1].to == ["ada@example.org"] and "erased" in mailbox[-1].subject


@pytest.mark.promise("P13", "P21")
def test_erase_now_skips_the_grace_period(client, customer, password, mailbox):
    client.force_login(customer)
    client.post(reverse("accounts:close"), {"password": password, "erase_now": "on"})
    assert not Account.objects.filter(pk=customer.account_id).exists()
    assert ErasureRecord.objects.get(account_ref=customer.account_id).requested_by.startswith(
        "customer"
    )


@pytest.mark.promise("P14")
def test_invoices_are_kept_detached_for_the_legal_period_then_deleted(
    customer, invoice, mailbox, time_machine
):
    time_machine.move_to("2026-03-01 12:00Z", tick=False)
    services.close_account(customer.account, by=customer, erase_now=True)
    invoice.refresh_from_db()
    assert invoice.account_id is None
    assert invoice.billing_name == "Ada Lovelace"
    assert invoice.keep_until.year == 2036
    time_machine.move_to("2036-02-28 12:00Z", tick=False)
    delete_expired_legal_holds()
    assert Invoice.objects.filter(pk=invoice.pk).exists()
    time_machine.move_to("2036-03-02 12:00Z", tick=False)
    delete_expired_legal_holds()
    assert not Invoice.objects.filter(pk=invoice.pk).exists()


@pytest.mark.promise("P17", "P14")
def test_after_erasure_no_table_holds_the_customers_identifiers(customer, mailbox, settings):
    account_id = customer.account_id
    customer.postal_address = "12 Analytical Row, London"
    customer.save()
    services.update_profile(customer, by=customer, name="Ada Byron")
    populate_account(customer.account)  # application data too: contacts, proofs, keys
    services.close_account(customer.account, by=customer, erase_now=True)
    needles = ["ada@example.org", "Ada Byron", "Ada Lovelace", "7946 0018", "Analytical Row"]
    needles += ["carol@example.net", "Carol Contact", "Carolton", "203.0.113.7", "CarolBrowser"]
    found = _search_whole_database(needles, skip_tables={"outbox_outboxmessage"})
    assert not found, found
    assert ErasureRecord.objects.filter(account_ref=account_id).exists()
    assert AuditEvent.objects.filter(account_id=account_id, action="erase").exists()


def _search_whole_database(needles: list[str], skip_tables: set[str]) -> list[str]:
    """Every text column of every table, searched for each needle (PostgreSQL or SQLite)."""
    found = []
    introspection = connection.introspection
    like = "::text ILIKE" if connection.vendor == "postgresql" else " LIKE"
    with connection.cursor() as cursor:
        columns = [
            (table, column.name)
            for table in introspection.table_names(cursor)
            for column in introspection.get_table_description(cursor, table)
            if introspection.get_field_type(column.type_code, column)
            in ("TextField", "CharField", "JSONField")
        ]
        for table, column in columns:
            if table in skip_tables:
                continue
            for needle in needles:
                cursor.execute(
                    f'SELECT count(*) FROM "{table}" WHERE "{column}"{like} %s',  # noqa: S608
                    [f"%{needle}%"],
                )
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column} holds {needle!r}")
    return found


@pytest.mark.promise("P13")
def test_an_erased_address_is_suppressed_by_a_keyed_hash_only(customer, mailbox):
    services.close_account(customer.account, by=customer, erase_now=True)
    digest = privacy.email_digest("ada@example.org")
    assert SuppressedEmail.objects.filter(digest=digest).exists()
    assert privacy.is_suppressed("ADA@example.org")
    # Only the hash: 64 hexadecimal digits (which may spell "ada" by chance, 1.5% of
    # runs, as "assert 'ada' not in digest" once found), never the address.
    assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")
    assert "ada@example.org" not in digest


def test_an_interrupted_erasure_finishes_when_run_again(customer, mailbox, monkeypatch):
    for _ in range(3):
        UserFactory(account=customer.account)
    services.close_account(customer.account, by=customer)
    Account.objects.filter(pk=customer.account_id).update(
        erase_after=timezone.now() - timedelta(days=1)
    )
    monkeypatch.setattr(privacy, "ERASURE_BATCH", 1)
    real_delete = privacy._delete
    calls = {"n": 0}

    def dying_delete(entry, account, record, *rest):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if entry.model is User:
            raise KeyboardInterrupt("worker killed")
        return real_delete(entry, account, record, *rest)

    monkeypatch.setattr(privacy, "_delete", dying_delete)
    with pytest.raises(KeyboardInterrupt):
        erase_due_accounts()
    assert Account.objects.get(pk=customer.account_id).status == "erasing"
    assert ErasureRecord.objects.get(account_ref=customer.account_id).finished_at is None
    monkeypatch.setattr(privacy, "_delete", real_delete)
    assert erase_due_accounts() == 1
    assert not User.objects.filter(account_id=customer.account_id).exists()
    record = ErasureRecord.objects.get(account_ref=customer.account_id)
    assert record.finished_at is not None and record.counts["deleted accounts.User"] == 4
    # The notice of erasure went once to each of the account's users (one message each).
    erased = [m.to[0] for m in mailbox if "erased" in m.subject]
    assert len(erased) == len(set(erased)) == len(closed_users(mailbox))


def test_an_open_account_is_never_erased(customer):
    with pytest.raises(ValueError, match="open"):
        privacy.erase_account(customer.account_id)
    assert User.objects.filter(pk=customer.pk).exists()


def test_the_erasure_of_one_account_leaves_another_untouched(customer, other_customer, mailbox):
    services.close_account(customer.account, by=customer, erase_now=True)
    other_customer.refresh_from_db()
    assert other_customer.account.status == "active"


def closed_users(mailbox) -> set[str]:  # type: ignore[no-untyped-def]
    """The users told that their account was closed: those the erasure notice is for."""
    return {m.to[0] for m in mailbox if "is closed" in m.subject}
