"""A contact who files a request gets a receipt by mail (what, when, the due date) and the
customer is told at once, by mail to the account's users and on their requests page; both
mails go through the one pipeline to a real SMTP server."""

from __future__ import annotations

import pytest

from tests.audience.conftest import path_of
from tests.factories import UserFactory
from tidings.audience import links, rights, services
from tidings.audience.models import ContactRequest
from tidings.sending.models import OutboundMail


@pytest.fixture
def reader(account, newsletter):  # type: ignore[no-untyped-def]
    return services.add_contact(
        account, "reader@example.org", name="Rea Der", lists=[newsletter], proof={"method": "form"}
    )


def ask(client, contact, kind: str, details: str = ""):  # type: ignore[no-untyped-def]
    return client.post(
        path_of(links.preference_url(contact)),
        {"action": "request", "kind": kind, "details": details},
        REMOTE_ADDR="192.0.2.1",
    )


@pytest.mark.django_db(transaction=True)
def test_the_contact_gets_a_receipt_and_the_customers_users_are_told(
    client, customer, account, reader, smtp_mail
):
    colleague = UserFactory(account=account, email="colleague@example.org")
    response = ask(client, reader, "access", "Which lists am I on?")
    assert response.status_code == 200
    request = ContactRequest.objects.get(contact=reader)

    (receipt,) = smtp_mail.to("reader@example.org")
    body = receipt.get_content()
    assert account.name in receipt["Subject"]
    assert request.get_kind_display() in body
    assert f"{request.received_at:%-d %B %Y}" in body
    assert f"{request.due_at:%-d %B %Y}" in body
    assert "Which lists am I on?" in body
    # Through the one pipeline: in the ledger, as mail to the contact.
    assert OutboundMail.objects.filter(to_email="reader@example.org", kind="contact").exists()

    for user in (customer, colleague):
        (notice,) = smtp_mail.to(user.email)
        text = notice.get_content()
        assert f"/requests/{request.uuid}/" in text
        assert f"{request.due_at:%-d %B %Y}" in notice["Subject"]

    # And it shows on their requests page at once.
    client.force_login(customer)
    inbox = client.get("/requests/").content.decode()
    assert f"/requests/{request.uuid}/" in inbox


@pytest.mark.django_db(transaction=True)
def test_asking_again_while_open_sends_no_second_receipt(client, customer, reader, smtp_mail):
    ask(client, reader, "erasure")
    ask(client, reader, "erasure", "again")
    assert len(smtp_mail.to("reader@example.org")) == 1
    assert len(smtp_mail.to(customer.email)) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("kind", "details"), [("everything", ""), ("access", "x" * 2001)])
def test_a_refused_request_sends_nothing_and_stores_nothing(
    client, customer, reader, smtp_mail, kind, details
):
    response = ask(client, reader, kind, details)
    assert response.status_code == 400
    assert not ContactRequest.objects.exists()
    assert not OutboundMail.objects.exists() and not smtp_mail.messages


def test_the_receipt_is_posted_in_the_requests_transaction(reader, mailbox):
    request, new = rights.request_from_contact(reader, kind="restriction")
    assert new
    receipt, notice = sorted(mailbox, key=lambda m: m.to != ["reader@example.org"])
    assert receipt.to == ["reader@example.org"] and "restriction" in receipt.body
    assert notice.to == ["ada@example.org"] and f"/requests/{request.uuid}/" in notice.body
