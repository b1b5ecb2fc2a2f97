"""`tidings inbound`: a real SMTP conversation with the listener (aiosmtpd) on loopback."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from tests.conftest import free_port
from tidings.desk import listener
from tidings.desk.models import Conversation

EML = Path(__file__).parent / "eml"


@pytest.fixture
def running(transactional_db):  # type: ignore[no-untyped-def]
    port = free_port()
    controller = listener.controller("127.0.0.1", port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_mail_in_over_smtp_opens_a_conversation(running):
    with smtplib.SMTP("127.0.0.1", running) as smtp:
        smtp.sendmail(
            "ada@example.org", ["support@example.com"], (EML / "quoted_printable.eml").read_bytes()
        )
    conversation = Conversation.objects.get()
    assert conversation.email == "ada@example.org"
    assert "résumé" in conversation.messages.get().body


def test_a_malformed_message_is_refused_with_a_permanent_error(running):
    with (
        smtplib.SMTP("127.0.0.1", running) as smtp,
        pytest.raises(smtplib.SMTPDataError) as refused,
    ):
        smtp.sendmail("x@example.org", ["support@example.com"], b"no headers at all\r\n")
    assert refused.value.smtp_code == 550
    assert not Conversation.objects.exists()


def test_a_50_mb_message_is_refused_before_it_is_stored(running, settings):
    big = (EML / "quoted_printable.eml").read_bytes() + b"A" * (50 * 1024 * 1024)
    with (
        smtplib.SMTP("127.0.0.1", running) as smtp,
        pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused)) as refused,
    ):
        smtp.sendmail("ada@example.org", ["support@example.com"], big)
    assert refused.value.smtp_code == 552
    assert not Conversation.objects.exists()


def test_over_smtp_only_a_signed_mail_is_tied_to_the_customer(running, customer, sign):
    # Over SMTP, lines end in CRLF (a bare LF message would be one overlong line).
    raw = (EML / "quoted_printable.eml").read_bytes().replace(b"\n", b"\r\n")
    forged = sign(raw.replace(b"<qp-1@", b"<forged-1@"), "attacker.example")
    with smtplib.SMTP("127.0.0.1", running) as smtp:
        smtp.sendmail("ada@example.org", ["support@example.com"], sign(raw))
        smtp.sendmail("ada@example.org", ["support@example.com"], forged)
    theirs, other = Conversation.objects.order_by("pk")
    assert theirs.sender_verified and theirs.user == customer
    assert not other.sender_verified and other.user is None
