"""Bounces and complaints: DSNs as Postfix and Exim write them, read from a real POP3
server; provider webhooks through django-anymail, where a forged request changes
nothing. A hard bounce or a complaint stops all mail to the contact at once."""

from __future__ import annotations

import base64
import json
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import campaign_status
from tests.sending.conftest import add_contacts
from tidings.audience.models import Contact, SuppressedContact
from tidings.audience.services import contact_digest
from tidings.campaigns.models import Campaign
from tidings.sending import bounces, engine, recipients
from tidings.sending.models import BounceRecord, CampaignStat, Delivery

pytestmark = pytest.mark.django_db

DSN = Path(__file__).parent / "dsn"


@pytest.fixture
def sent(account, newsletter, campaign):  # type: ignore[no-untyped-def]
    """reader0 and reader1 have been sent the campaign."""
    add_contacts(account, newsletter, 2)
    Campaign.objects.filter(pk=campaign.pk).update(**campaign_status(Campaign.Status.SENT))
    recipients.materialise(campaign)
    for d in Delivery.objects.all():
        d.status, d.message_id = "sent", f"<{campaign.uuid.hex}.{d.pk}@news.example.org>"
        d.save()
    return Delivery.objects.get(contact__email="reader0@example.net")


def fixture(name: str, delivery: Delivery) -> bytes:
    return (
        (DSN / name).read_bytes().replace(b"MESSAGE_ID_PLACEHOLDER", delivery.message_id.encode())
    )


def assert_stopped(contact: Contact, status: str) -> None:
    contact.refresh_from_db()
    assert contact.status == status
    assert SuppressedContact.objects.filter(digest=contact_digest(contact.email)).exists()


@pytest.mark.parametrize("name", ["postfix-hard.eml", "exim-hard.eml"])
def test_a_hard_bounce_dsn_stops_mail_to_the_contact(sent, name):
    assert bounces.handle_dsn(fixture(name, sent)) == "hard bounce"
    assert_stopped(sent.contact, Contact.Status.BOUNCED)
    sent.refresh_from_db()
    assert sent.status == "bounced"
    other = Contact.objects.get(email="reader1@example.net")
    assert other.status == Contact.Status.ACTIVE
    assert CampaignStat.objects.get(kind="bounce").count == 1
    assert engine.is_mailable(sent.contact, sent.campaign) is False


def test_soft_bounces_count_toward_the_threshold(sent, settings):
    settings.SENDING = {**settings.SENDING, "soft_bounce_limit": 3}
    raw = fixture("postfix-soft.eml", sent)
    assert bounces.handle_dsn(raw) == "soft bounce"
    assert bounces.handle_dsn(raw) == "soft bounce"
    contact = Contact.objects.get(pk=sent.contact_id)
    assert contact.status == Contact.Status.ACTIVE and contact.soft_bounces == 2
    bounces.handle_dsn(raw)
    assert_stopped(contact, Contact.Status.BOUNCED)
    assert BounceRecord.objects.filter(contact=contact, kind="soft").count() == 3


def test_a_dsn_for_an_unknown_message_or_someone_else_changes_nothing(sent):
    raw = (DSN / "postfix-hard.eml").read_bytes()
    assert bounces.handle_dsn(raw.replace(b"MESSAGE_ID_PLACEHOLDER", b"<nope@x>")).startswith("no ")
    # The Message-ID of reader1's delivery, but the failure names reader0: not applied.
    other = Delivery.objects.get(contact__email="reader1@example.net")
    assert "not the delivery" in bounces.handle_dsn(fixture("postfix-hard.eml", other))
    assert bounces.handle_dsn(fixture("vacation-reply.eml", sent)) == "not a bounce"
    assert set(Contact.objects.values_list("status", flat=True)) == {"active"}


class POP3Handler(socketserver.StreamRequestHandler):
    """Just enough of RFC 1939 for poplib: USER, PASS, STAT, RETR, DELE, QUIT."""

    def handle(self) -> None:
        box = self.server.mailbox  # type: ignore[attr-defined]
        self.wfile.write(b"+OK tiny POP3 ready\r\n")
        authed = False
        while line := self.rfile.readline():
            cmd, _, arg = line.decode().strip().partition(" ")
            cmd = cmd.upper()
            if cmd == "USER":
                self.wfile.write(b"+OK\r\n")
            elif cmd == "PASS":
                authed = arg == "secret"
                self.wfile.write(b"+OK\r\n" if authed else b"-ERR bad login\r\n")
            elif cmd == "STAT" and authed:
                live = [m for m in box["messages"] if m is not None]
                self.wfile.write(f"+OK {len(live)} {sum(map(len, live))}\r\n".encode())
            elif cmd == "RETR" and authed:
                data = box["messages"][int(arg) - 1]
                body = b"\r\n".join(
                    (b"." + ln if ln.startswith(b".") else ln) for ln in data.split(b"\n")
                )
                self.wfile.write(b"+OK\r\n" + body.replace(b"\r\r", b"\r") + b"\r\n.\r\n")
            elif cmd == "DELE" and authed:
                box["deleted"].add(int(arg))
                self.wfile.write(b"+OK\r\n")
            elif cmd == "QUIT":
                for n in box["deleted"]:
                    box["messages"][n - 1] = None
                box["messages"] = [m for m in box["messages"] if m is not None]
                box["deleted"] = set()
                self.wfile.write(b"+OK bye\r\n")
                return
            else:
                self.wfile.write(b"-ERR\r\n")


@pytest.fixture
def pop3() -> Iterator[tuple[dict, int]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), POP3Handler)
    server.daemon_threads = True
    server.mailbox = {"messages": [], "deleted": set()}  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.mailbox, server.server_address[1]  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def test_the_bounce_mailbox_is_read_over_pop3_and_emptied(sent, pop3):
    mailbox, port = pop3
    other = Delivery.objects.get(contact__email="reader1@example.net")
    mailbox["messages"] = [
        fixture("exim-hard.eml", sent),
        fixture("vacation-reply.eml", sent),
        fixture("postfix-hard.eml", other),  # names reader0, is about reader1: ignored
    ]
    url = f"pop3://bounces:secret@127.0.0.1:{port}"
    assert bounces.read_bounce_mailbox(url) == 3
    assert mailbox["messages"] == []
    assert_stopped(sent.contact, Contact.Status.BOUNCED)
    assert Contact.objects.get(email="reader1@example.net").status == Contact.Status.ACTIVE
    assert bounces.read_bounce_mailbox(url) == 0


# Provider webhooks ------------------------------------------------------------------------

SECRET = "hooks:s3cret-Value"


def postmark_event(delivery: Delivery, **fields: object) -> str:
    event = {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "TypeCode": 1,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"tidings": f"d{delivery.pk}"},
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": delivery.contact.email,
        "From": "news@news.example.org",
        "BouncedAt": "2026-11-24T10:15:03Z",
        "Inactive": True,
        "Subject": "News for Reader",
    }
    event.update(fields)
    return json.dumps(event)


def post(client, body: str, auth: str | None):  # type: ignore[no-untyped-def]
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    return client.post(
        "/webhooks/postmark/", data=body, content_type="application/json", headers=headers
    )


@pytest.fixture
def webhook_secret(settings):  # type: ignore[no-untyped-def]
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}


def test_a_verified_postmark_bounce_stops_mail(client, sent, webhook_secret):
    assert post(client, postmark_event(sent), SECRET).status_code == 200
    assert_stopped(sent.contact, Contact.Status.BOUNCED)


@pytest.mark.promise("P21")
def test_a_verified_postmark_complaint_stops_mail(client, sent, webhook_secret):
    body = postmark_event(sent, RecordType="SpamComplaint", Type="SpamComplaint")
    assert post(client, body, SECRET).status_code == 200
    assert_stopped(sent.contact, Contact.Status.COMPLAINED)
    assert CampaignStat.objects.get(kind="complaint").count == 1


@pytest.mark.parametrize("auth", [None, "hooks:wrong", "other:s3cret-Value", ""])
def test_a_forged_webhook_is_refused_and_changes_nothing(client, sent, webhook_secret, auth):
    response = post(client, postmark_event(sent), auth)
    assert response.status_code in (400, 403)
    assert set(Contact.objects.values_list("status", flat=True)) == {"active"}
    assert not BounceRecord.objects.exists()


def test_an_event_naming_someone_else_changes_nothing(client, sent, webhook_secret):
    # Verified, but the metadata points at reader0's delivery and the address is reader1's.
    body = postmark_event(sent, Email="reader1@example.net")
    assert post(client, body, SECRET).status_code == 200
    assert set(Contact.objects.values_list("status", flat=True)) == {"active"}


def test_without_a_configured_secret_the_webhook_does_not_exist(client, sent, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ""}
    assert post(client, postmark_event(sent), None).status_code == 404
    assert set(Contact.objects.values_list("status", flat=True)) == {"active"}


MAILGUN_KEY = "key-0123456789abcdef"


def mailgun_event(
    delivery: Delivery,
    *,
    key: str = MAILGUN_KEY,
    timestamp: str | None = None,
    token: str | None = None,
) -> str:
    import hashlib
    import hmac
    import secrets
    import time

    timestamp = timestamp or str(int(time.time()))
    token = token or secrets.token_hex(25)
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return json.dumps(
        {
            "signature": {"timestamp": timestamp, "token": token,
                          "signature": signature.hexdigest()},
            "event-data": {
                "event": "failed",
                "severity": "permanent",
                "timestamp": 1764000903.1,
                "recipient": delivery.contact.email,
                "user-variables": {"tidings": f"d{delivery.pk}"},
                "delivery-status": {"code": 550, "message": "5.1.1 no such user"},
                "message": {"headers": {"message-id": "20261124.1@mg.example.org"}},
            },
        }
    )  # fmt: skip


@pytest.fixture
def mailgun(settings):  # type: ignore[no-untyped-def]
    settings.ANYMAIL = {
        **settings.ANYMAIL, "WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY
    }  # fmt: skip


def post_mailgun(client, body: str):  # type: ignore[no-untyped-def]
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()
    return client.post("/webhooks/mailgun/", data=body, content_type="application/json",
                       headers={"Authorization": auth})  # fmt: skip


def test_a_signed_mailgun_failure_is_a_hard_bounce(client, sent, mailgun):
    assert post_mailgun(client, mailgun_event(sent)).status_code == 200
    assert_stopped(sent.contact, Contact.Status.BOUNCED)


def test_a_mailgun_event_with_a_forged_signature_changes_nothing(client, sent, mailgun):
    assert post_mailgun(client, mailgun_event(sent, key="guessed")).status_code == 400
    assert set(Contact.objects.values_list("status", flat=True)) == {"active"}


def test_mailgun_webhooks_are_off_without_a_signing_key(client, sent, mailgun, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_WEBHOOK_SIGNING_KEY": ""}
    assert post_mailgun(client, mailgun_event(sent, key="")).status_code == 404
    assert set(Contact.objects.values_list("status", flat=True)) == {"active"}


def test_a_mailgun_event_signed_long_ago_is_refused(client, sent, mailgun):
    import time

    year_ago = str(int(time.time()) - 365 * 86400)
    assert post_mailgun(client, mailgun_event(sent, timestamp=year_ago)).status_code == 400
    in_future = str(int(time.time()) + 3600)
    assert post_mailgun(client, mailgun_event(sent, timestamp=in_future)).status_code == 400
    assert set(Contact.objects.values_list("status", flat=True)) == {"active"}


def test_a_replayed_mailgun_event_is_refused(client, sent, mailgun):
    event = mailgun_event(sent, token="0123456789abcdef0123456789abcdef0123456789abcdef01")
    assert post_mailgun(client, event).status_code == 200
    Contact.objects.update(status=Contact.Status.ACTIVE)
    assert post_mailgun(client, event).status_code == 400
    assert set(Contact.objects.values_list("status", flat=True)) == {"active"}
