"""Opening a conversation from the web: the customer's form, and the public contact
page with its rate limit and anti-bot check (no third party, no cookie)."""

from __future__ import annotations

import re
import time

import pytest
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tidings.desk.forms import SALT
from tidings.desk.models import Attachment, Conversation
from tidings.privacy.models import CollectionRecord
from tidings.sending.models import OutboundMail

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e226059b0000000049454e44ae426082"
)


def shown(seconds_ago: int = 60) -> str:
    return signing.dumps(int(time.time()) - seconds_ago, salt=SALT)


def post_contact(client, **over):  # type: ignore[no-untyped-def]
    data = {
        "name": "Vera Visitor",
        "email": "vera@example.net",
        "subject": "Do you host in the EU?",
        "body": "Where are your servers?",
        "website": "",
        "shown": shown(),
        **over,
    }
    return client.post(reverse("public:contact"), data, REMOTE_ADDR="198.51.100.9")


def test_a_visitor_opens_a_conversation_and_gets_an_automatic_acknowledgement(client, db, mailbox):
    response = post_contact(client)
    assert response.status_code == 200
    assert not response.cookies
    conversation = Conversation.objects.get()
    assert (conversation.email, conversation.name, conversation.user) == (
        "vera@example.net",
        "Vera Visitor",
        None,
    )
    assert conversation.messages.get().body == "Where are your servers?"
    (ack,) = mailbox
    assert ack.to == ["vera@example.net"]
    assert ack["Auto-Submitted"] == "auto-generated"
    assert f"<{conversation.reference}@" in ack["References"]


@pytest.mark.parametrize(
    "trap",
    [lambda: {"website": "http://spam.example"}, lambda: {"shown": "forged"}],
    ids=["honeypot", "forged-timestamp"],
)
def test_bots_are_thanked_and_nothing_is_stored(client, db, mailbox, trap):
    response = post_contact(client, **trap())
    assert response.status_code == 200
    assert not Conversation.objects.exists()
    assert not mailbox


@pytest.mark.parametrize(
    ("seconds_ago", "said"),
    [(0, "That was quick"), (3 * 86400, "This page was open a long time")],
    ids=["too-fast", "stale"],
)
def test_a_post_too_fast_or_too_late_is_shown_again_with_what_was_written(
    client, db, mailbox, on_commit_runs, seconds_ago, said
):
    """A person who pastes a message and sends it at once, or comes back to a tab left
    open, is asked again, never thanked for a message that was dropped."""
    response = post_contact(client, shown=shown(seconds_ago=seconds_ago))
    page = response.content.decode()
    assert response.status_code == 400
    assert said in page and "Where are your servers?" in page
    assert not Conversation.objects.exists() and not mailbox
    # The page carries a fresh timestamp: sent again once a person would have, it lands.
    fresh = re.search(r'name="shown" value="([^"]+)"', page)
    assert fresh is not None
    assert signing.loads(fresh.group(1), salt=SALT) >= int(time.time()) - 1
    assert post_contact(client).status_code == 200
    assert Conversation.objects.count() == 1


def test_the_public_form_is_rate_limited_per_client(client, db, settings, on_commit_runs):
    settings.DESK = {**settings.DESK, "form_posts_per_hour": 2}
    assert post_contact(client).status_code == 200
    assert post_contact(client).status_code == 200
    assert post_contact(client).status_code == 429
    assert Conversation.objects.count() == 2


def test_bad_input_changes_nothing_and_says_why(client, db, on_commit_runs):
    response = post_contact(client, email="not an address")
    assert response.status_code == 400
    assert not Conversation.objects.exists()
    assert not OutboundMail.objects.exists()


def test_the_contact_page_shows_the_form_with_no_cookie(client, db):
    response = client.get(reverse("public:contact"))
    assert b'name="website"' in response.content and b'name="shown"' in response.content
    assert not response.cookies


def test_a_customer_writes_from_their_account_with_an_attachment(client, customer, mailbox):
    client.force_login(customer)
    upload = SimpleUploadedFile("screen.png", PNG, content_type="application/x-anything")
    response = client.post(
        reverse("desk:new"), {"subject": "Help", "body": "See the picture", "attachment": upload}
    )
    conversation = Conversation.objects.get()
    assert response.status_code == 302
    assert (conversation.user, conversation.account) == (customer, customer.account)
    attachment = Attachment.objects.get()
    assert attachment.content_type == "image/png"  # sniffed, not the browser's word
    page = client.get(reverse("desk:conversation", args=[conversation.pk]))
    assert b"See the picture" in page.content
    download = client.get(reverse("desk:attachment", args=[attachment.pk]))
    assert download["Content-Disposition"].startswith("attachment;")
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download.content == PNG


def test_an_html_upload_is_refused(client, customer, on_commit_runs):
    client.force_login(customer)
    upload = SimpleUploadedFile("x.svg", b"<svg><script>alert(1)</script></svg>")
    response = client.post(
        reverse("desk:new"), {"subject": "Help", "body": "hi", "attachment": upload}
    )
    assert response.status_code == 400
    assert not Conversation.objects.exists()


def test_another_customer_sees_neither_the_conversation_nor_its_files(
    client, customer, other_customer, on_commit_runs
):
    client.force_login(customer)
    client.post(
        reverse("desk:new"),
        {"subject": "Mine", "body": "private", "attachment": SimpleUploadedFile("a.png", PNG)},
    )
    conversation, attachment = Conversation.objects.get(), Attachment.objects.get()
    client.force_login(other_customer)
    assert client.get(reverse("desk:conversation", args=[conversation.pk])).status_code == 404
    assert client.get(reverse("desk:attachment", args=[attachment.pk])).status_code == 404


@pytest.mark.promise("P2")
def test_a_support_request_records_its_point_of_collection(client, db, on_commit_runs):
    post_contact(client)
    records = CollectionRecord.objects.filter(point="support request (form)")
    collected = {what for r in records for what in r.data_collected}
    assert collected == {"email", "name", "message"}
    assert {r.legal_basis for r in records} == {"contract"}
