"""Mail to the support address through a provider's inbound webhook (Mailgun's, through
django-anymail): signed, fresh and used once, or refused and nothing written."""

from __future__ import annotations

import base64
import hashlib
import hmac
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
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET,
                        "MAILGUN_WEBHOOK_SIGNING_KEY": KEY}  # fmt: skip


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
