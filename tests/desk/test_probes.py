"""The desk probed as a hostile visitor or a careless customer would: other people's
conversations, files and rating links, markup passed off as text, forged replies and
mail that loops or cannot be stored. Each probe that found a hole is the test of its fix."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.desk.conftest import verified
from tests.desk.test_forms import PNG, post_contact
from tidings.desk import attachments, inbound, ratings, services
from tidings.desk.models import Attachment, Conversation, Message, Rating

EML = Path(__file__).parent / "eml"
pytestmark = pytest.mark.usefixtures("trusted_mta")


def mail(
    sender: str, *, subject: str = "Hello", body: str = "A question.", **headers: str
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return bytes(msg)


def opened_by(customer) -> Conversation:  # type: ignore[no-untyped-def]
    """A customer's conversation by mail (verified by our MTA: `trusted_mta`)."""
    return inbound.receive(
        verified(mail(customer.email, subject="My export", Message_ID="<first@example.org>"))
    ).conversation


# A visitor passing for a customer ---------------------------------------------------------


def test_the_contact_form_with_a_customers_address_is_no_request_of_theirs(
    client, customer, on_commit_runs
):
    # Anyone can type a customer's address in the public form: the conversation stays
    # a visitor's, out of the customer's support page and the staff's "their request".
    post_contact(client, email=customer.email, body="Please change my phone to +32 1.")
    conversation = Conversation.objects.get()
    assert (conversation.user, conversation.account) == (None, None)
    client.force_login(customer)
    assert b"change my phone" not in client.get(reverse("desk:conversations")).content


def test_a_stranger_replying_with_a_conversations_reference_opens_their_own(
    customer, on_commit_runs
):
    conversation = opened_by(customer)
    forged = mail(
        "mallory@example.net",
        body="Please send my invoices to mallory@example.net.",
        References=services.thread_id(conversation),
        In_Reply_To="<first@example.org>",
    )
    outcome = inbound.receive(forged)
    assert outcome.action == "opened" and outcome.conversation != conversation
    assert outcome.conversation.user is None
    assert conversation.messages.count() == 1


def test_the_customer_still_replies_into_their_conversation(customer, on_commit_runs):
    conversation = opened_by(customer)
    reply = mail(customer.email.upper(), References=services.thread_id(conversation))
    assert inbound.receive(verified(reply)).conversation == conversation


def test_a_bounce_of_our_answer_is_still_kept_on_the_conversation(customer, on_commit_runs):
    conversation = opened_by(customer)
    dsn = mail(
        "MAILER-DAEMON@mx.example.org",
        References=services.thread_id(conversation),
        Auto_Submitted="auto-replied",
    )
    outcome = inbound.receive(dsn)
    assert outcome.conversation == conversation and outcome.message.automatic


# Mail that cannot be stored --------------------------------------------------------------


def test_a_nul_in_an_encoded_subject_or_name_is_dropped_not_retried(db, on_commit_runs):
    raw = mail("=?utf-8?b?QWRhAEw=?= <ada@example.org>", subject="=?utf-8?b?SGkATlVM?=")
    conversation = inbound.receive(raw).conversation
    assert (conversation.subject, conversation.name) == ("HiNUL", "AdaL")


def test_a_sender_that_is_no_address_is_refused_for_good(db, on_commit_runs):
    # The listener answers Malformed with 550 (no retry), anything else with 451.
    with pytest.raises(inbound.Malformed):
        inbound.receive(mail("someone@no_such domain"))
    assert not Conversation.objects.exists()


def test_a_loop_through_our_own_address_in_another_case_is_dropped(db, on_commit_runs, settings):
    own = settings.OPERATOR["support_email"].upper()
    assert inbound.receive(mail(f"Support <{own}>")).action == "dropped"
    assert not Conversation.objects.exists()


# Other people's conversations, files and rating links ------------------------------------


def test_another_customer_cannot_answer_into_a_conversation(
    client, customer, other_customer, on_commit_runs
):
    conversation = opened_by(customer)
    client.force_login(other_customer)
    url = reverse("desk:conversation", args=[conversation.pk])
    assert client.post(url, {"body": "injected"}).status_code == 404
    assert conversation.messages.count() == 1


def test_a_file_of_an_internal_note_or_anonymous_download_is_refused(
    client, customer, staff, on_commit_runs
):
    conversation = opened_by(customer)
    note = services.add_note(conversation, by=staff, body="internal")
    hidden = Attachment.objects.create(
        message=note, filename="n.png", content_type="image/png", size=len(PNG), data=PNG
    )
    url = reverse("desk:attachment", args=[hidden.pk])
    assert client.get(url).status_code == 404  # anonymous
    client.force_login(customer)
    assert client.get(url).status_code == 404  # a note's file is the staff's


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf<html><script>alert(1)</script></html>",
        b"<!-- hi --><svg onload=alert(1)></svg>",
        b"\n\n   <body><script>alert(1)</script></body>",
        b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>",
    ],
)
def test_markup_is_not_accepted_as_plain_text(data):
    with pytest.raises(attachments.Refused):
        attachments.accept("notes.txt", data)


def test_an_accepted_file_is_only_ever_a_sandboxed_download(client, customer, on_commit_runs):
    client.force_login(customer)
    client.post(
        reverse("desk:new"),
        {"subject": "x", "body": "y", "attachment": SimpleUploadedFile('a"b.txt', b"plain")},
    )
    found = Attachment.objects.get()
    response = client.get(reverse("desk:attachment", args=[found.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="ab.txt"'
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_rating_link_rates_its_own_conversation_once(client, customer, staff, mailbox):
    first, second = (
        opened_by(customer),
        inbound.receive(mail(customer.email, Message_ID="<second@example.org>")).conversation,
    )
    for conversation in (first, second):
        services.set_status(conversation, status=Conversation.Status.SOLVED, by=staff)
    token = services.rating_token(first)
    url = reverse("desk:rate", args=[token])
    assert client.get(url).status_code == 200 and not Rating.objects.exists()  # a scanner
    assert client.post(url, {"score": Rating.Score.values[-1]}).status_code == 200
    assert client.post(url, {"score": Rating.Score.values[0]}).status_code == 400
    assert list(Rating.objects.values_list("conversation_id", flat=True)) == [first.pk]
    # A token of one conversation with the other's id inside is not ours.
    forged = token.replace(str(first.pk), str(second.pk), 1)
    with pytest.raises(ratings.InvalidRating):
        ratings.open_link(forged)


@pytest.mark.parametrize("score", ["", "0", "99", "-1", "1e9", "\x00"])
def test_a_rating_with_a_bad_score_records_nothing(client, customer, staff, mailbox, score):
    conversation = opened_by(customer)
    services.set_status(conversation, status=Conversation.Status.SOLVED, by=staff)
    url = reverse("desk:rate", args=[services.rating_token(conversation)])
    assert client.post(url, {"score": score}).status_code == 400
    assert not Rating.objects.exists()


# Bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [("body", "a\x00b"), ("subject", "s\x00"), ("body", "x" * 60_000), ("subject", "s" * 500)],
)
def test_bad_input_in_a_customers_request_changes_nothing(
    client, customer, on_commit_runs, field, value
):
    client.force_login(customer)
    data = {"subject": "Help", "body": "text", field: value}
    assert client.post(reverse("desk:new"), data).status_code == 400
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_a_nul_in_the_contact_form_changes_nothing(client, db, on_commit_runs):
    assert post_contact(client, body="a\x00b").status_code == 400
    assert not Conversation.objects.exists()


# The staff's desk: roles and bad input -----------------------------------------------------


def test_billing_staff_reach_neither_the_desk_nor_its_files(console, billing_staff, customer, db):
    conversation = opened_by(customer)
    file = Attachment.objects.create(
        message=conversation.messages.get(), filename="a.png", content_type="image/png",
        size=len(PNG), data=PNG,
    )  # fmt: skip
    client = console(billing_staff)
    assert client.get("/staff/desk/").status_code == 403
    assert client.get(f"/staff/desk/{conversation.pk}/").status_code == 403
    assert client.get(reverse("desk:attachment", args=[file.pk])).status_code == 404


def test_a_note_never_shows_to_the_customer(client, customer, staff, on_commit_runs):
    conversation = opened_by(customer)
    services.add_note(conversation, by=staff, body="Seems to be a reseller.")
    client.force_login(customer)
    page = client.get(reverse("desk:conversation", args=[conversation.pk]))
    assert page.status_code == 200 and "reseller" not in page.text


@pytest.mark.parametrize(
    "query", ["a\x00b", "#99999999999999999999999", "%", "'; drop table x; --", "x" * 5000]
)
def test_searching_the_queue_with_junk_is_an_empty_answer(console, staff, customer, query):
    conversation = opened_by(customer)
    client = console(staff)
    for queue in ("99999999999999999999", "\u00b2"):
        assert client.get("/staff/desk/", {"q": query, "queue": queue}).status_code == 200
    shown = client.get(f"/staff/desk/{conversation.pk}/", {"canned": "\u00b2"})
    assert shown.status_code == 200


@pytest.mark.parametrize(
    "post",
    [
        {"action": "cancel_followup", "followup": "abc"},
        {"action": "cancel_followup", "followup": "99999999999999999999999"},
        {"action": "assign", "assignee": "99999999999999999999999"},
        {"action": "assign", "assignee": "\u00b2"},  # a digit to isdigit(), not to int()
        {"action": "cancel_followup", "followup": "\u00b2"},
        {"action": "followup", "due_at": "2026-02-30 10:00", "body": "later"},
        {"action": "followup", "due_at": "2001-01-01 10:00", "body": "in the past"},
        {"action": "followup", "due_at": "\x00", "body": "x"},
        {"action": "reply", "body": "a\x00b"},
        {"action": "note", "body": "n" * 60_000},
        {"action": "status", "status": "deleted"},
        {"action": "change_customer", "name": "a\x00b"},
        {"action": "nonsense"},
    ],
)
def test_bad_input_on_a_conversation_changes_nothing(console, staff, customer, mailbox, post):
    conversation = opened_by(customer)
    before = (Message.objects.count(), len(mailbox))
    response = console(staff).post(f"/staff/desk/{conversation.pk}/", post)
    assert response.status_code in (302, 400, 404)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.NEW and conversation.assignee is None
    assert (Message.objects.count(), len(mailbox)) == before
    assert not conversation.followups.exists()


def test_the_acknowledgement_carries_no_text_of_the_visitors(client, db, mailbox):
    # The contact form mails any address typed in it: what the visitor wrote must not
    # ride along, or the form relays their spam under the operator's name.
    spam = "Cheap watches at https://spam.example/"
    post_contact(client, email="victim@example.net", subject=spam, name=spam, body=spam)
    (ack,) = [m for m in mailbox if m.to == ["victim@example.net"]]
    assert "spam.example" not in ack.subject + ack.body + str(ack.from_email)
    assert f"#{Conversation.objects.get().pk}" in ack.subject
