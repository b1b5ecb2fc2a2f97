"""Mail to the support address through a provider's inbound webhook (Mailgun's, through
django-anymail): signed, fresh and used once, or refused and nothing written."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path

import pytest

from tidings.desk.models import Conversation

EML = Path(__file__).parent / "eml"
SECRET = "hooks:s3cret-Value"
KEY = "key-0123456789abcdef"


@pytest.fixture
def mailgun(settings):  # type: ignore[no-untyped-def]
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "WEBHOOK_SECRET": SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": KEY,
    }


def form(*, key: str = KEY, timestamp: str | None = None, token: str | None = None) -> dict:
    timestamp = timestamp or str(int(time.time()))
    token = token or secrets.token_hex(25)
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return {
        "timestamp": timestamp,
        "token": token,
        "signature": signature.hexdigest(),
        "sender": "ada@example.org",
        "recipient": "support@example.com",
        "body-mime": (EML / "quoted_printable.eml").read_text(encoding="latin-1"),
    }


def post(client, data: dict):  # type: ignore[no-untyped-def]
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()
    return client.post("/webhooks/mailgun/inbound/", data, headers={"Authorization": auth})


def test_a_signed_inbound_message_opens_a_conversation(client, mailgun, on_commit_runs):
    assert post(client, form()).status_code == 200
    conversation = Conversation.objects.get()
    assert conversation.email == "ada@example.org"
    assert "résumé" in conversation.messages.get().body


@pytest.mark.parametrize(
    "forged",
    [
        lambda: form(key="guessed"),
        lambda: form(timestamp=str(int(time.time()) - 86400)),
    ],
    ids=["bad-signature", "signed-long-ago"],
)
def test_a_forged_or_stale_webhook_is_refused(client, mailgun, on_commit_runs, forged):
    assert post(client, forged()).status_code == 400
    assert not Conversation.objects.exists()


def test_a_replayed_webhook_is_refused(client, mailgun, on_commit_runs):
    data = form()
    assert post(client, data).status_code == 200
    assert post(client, data).status_code == 400
    assert Conversation.objects.count() == 1


def test_without_the_secrets_the_webhook_does_not_exist(client, db, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ""}
    assert post(client, form()).status_code == 404


# --- the other providers: Postmark, Brevo (basic auth only: they sign nothing), and
# MailerSend (its own HMAC signature over the body) -------------------------------------

MAILERSEND_SECRET = "ms-inbound-0123456789"
RAW = (EML / "quoted_printable.eml").read_text(encoding="latin-1")


@pytest.fixture
def providers(settings):  # type: ignore[no-untyped-def]
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "WEBHOOK_SECRET": SECRET,
        "MAILERSEND_INBOUND_SECRET": MAILERSEND_SECRET,
    }


def postmark() -> dict:
    """Postmark's inbound JSON, with "Include raw email content" on (RawEmail)."""
    return {
        "FromFull": {"Email": "ada@example.org", "Name": "Ada Lovelace"},
        "To": "support@example.com",
        "Subject": "Question about my résumé export",
        "MessageID": "5f0a9f9e-0000-4000-8000-000000000001",
        "Headers": [{"Name": "Message-ID", "Value": "<qp-1@example.org>"}],
        "TextBody": "ignored: RawEmail is read",
        "RawEmail": RAW,
    }


def brevo() -> dict:
    """Brevo's inbound parsed JSON (Brevo posts no raw MIME; these are its fields)."""
    return {
        "items": [
            {
                "Uuid": ["b2f1c9d0-0000-4000-8000-000000000002"],
                "MessageId": "<brevo-1@example.org>",
                "Subject": "Question about my export",
                "Headers": {
                    "From": "Ada Lovelace <ada@example.org>",
                    "To": "support@example.com",
                    "Subject": "Question about my export",
                    "Message-ID": "<brevo-1@example.org>",
                },
                "RawTextBody": "Hello, the export of my résumé list stops at 1000 rows.",
                "Attachments": [],
            }
        ]
    }


def mailersend() -> bytes:
    payload = {
        "type": "inbound.message",
        "created_at": "2026-12-06T11:00:00.000000Z",
        "data": {
            "id": "ms-1",
            "created_at": "2026-12-06T11:00:00.000000Z",
            "raw": RAW,
            "sender": {"email": "ada@example.org"},
            "recipients": {"rcptTo": [{"email": "support@example.com"}]},
        },
    }
    return json.dumps(payload).encode()


def basic(secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


def mailersend_headers(body: bytes, secret: str = MAILERSEND_SECRET) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {**basic(), "Signature": signature}


def test_postmark_brevo_and_mailersend_reach_the_same_parser(client, providers, on_commit_runs):
    url = "/webhooks/{}/inbound/"
    ok = client.post(url.format("postmark"), postmark(), "application/json", headers=basic())
    assert ok.status_code == 200
    conversation = Conversation.objects.get()
    assert conversation.email == "ada@example.org"
    assert "résumé" in conversation.messages.get().body
    # The same message again through MailerSend (same Message-ID): taken once.
    body = mailersend()
    sent = client.post(
        url.format("mailersend"), body, "application/json", headers=mailersend_headers(body)
    )
    assert sent.status_code == 200
    assert Conversation.objects.count() == 1
    ok = client.post(url.format("brevo"), brevo(), "application/json", headers=basic())
    assert ok.status_code == 200
    assert Conversation.objects.count() == 2
    assert (
        "résumé"
        in Conversation.objects.get(messages__message_id="<brevo-1@example.org>")
        .messages.get()
        .body
    )


@pytest.mark.parametrize(
    ("provider", "body", "headers"),
    [
        ("postmark", json.dumps(postmark()).encode(), basic("hooks:guessed")),
        ("brevo", json.dumps(brevo()).encode(), basic("hooks:guessed")),
        ("mailersend", mailersend(), mailersend_headers(mailersend(), "guessed")),
        ("mailersend", mailersend(), basic()),  # no signature at all
        ("mailersend", mailersend(), {**mailersend_headers(mailersend()), **basic("x:y")}),
    ],
    ids=[
        "postmark-bad-auth",
        "brevo-bad-auth",
        "mailersend-bad-signature",
        "mailersend-unsigned",
        "mailersend-bad-auth",
    ],
)
def test_a_forged_provider_webhook_is_refused_and_stores_nothing(
    client, providers, on_commit_runs, provider, body, headers
):
    answer = client.post(
        f"/webhooks/{provider}/inbound/", body, "application/json", headers=headers
    )
    assert answer.status_code in (400, 403)
    assert not Conversation.objects.exists()


def test_a_provider_webhook_without_its_secrets_or_unknown_does_not_exist(client, db, settings):
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "WEBHOOK_SECRET": SECRET,
        "MAILERSEND_INBOUND_SECRET": "",
    }
    body = mailersend()
    assert (
        client.post(
            "/webhooks/mailersend/inbound/",
            body,
            "application/json",
            headers=mailersend_headers(body),
        ).status_code
        == 404
    )
    assert client.post("/webhooks/sendgrid/inbound/", {}, headers=basic()).status_code == 404
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ""}
    answer = client.post("/webhooks/postmark/inbound/", postmark(), "application/json")
    assert answer.status_code == 404
    assert not Conversation.objects.exists()


def test_a_signed_message_through_a_webhook_keeps_its_signature(
    client, mailgun, providers, sign, on_commit_runs
):
    # A message that anymail's parsed copy writes out otherwise (nested multipart: a
    # blank line gained at a boundary, and the body hash with it): the raw MIME the
    # provider posted is what is judged, so its DKIM signature holds.
    unsigned = (EML / "nested_inline.eml").read_bytes()
    raw = sign(unsigned)
    data = {**form(), "body-mime": raw.decode("utf-8")}
    assert post(client, data).status_code == 200
    assert Conversation.objects.get().sender_verified
    # Postmark's RawEmail too.
    second = sign(unsigned.replace(b"Message-ID: <", b"Message-ID: <pm-"))
    payload = {**postmark(), "RawEmail": second.decode("utf-8")}
    answer = client.post(
        "/webhooks/postmark/inbound/", payload, "application/json", headers=basic()
    )
    assert answer.status_code == 200
    assert Conversation.objects.filter(sender_verified=True).count() == 2
