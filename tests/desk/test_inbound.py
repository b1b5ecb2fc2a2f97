"""Mail to the support address: parsed, threaded and kept; automatic mail never
acknowledged and never reopening anything (a corpus of .eml files in eml/)."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from pathlib import Path

import pytest

from tidings.desk import inbound, services
from tidings.desk.models import Attachment, Conversation, Message
from tidings.sending.models import OutboundMail

EML = Path(__file__).parent / "eml"


def eml(name: str, **fill: str) -> bytes:
    raw = (EML / name).read_bytes()
    for key, value in fill.items():
        raw = raw.replace(f"{{{key}}}".encode(), value.encode())
    return raw


def acks(address: str) -> list[OutboundMail]:
    return list(OutboundMail.objects.filter(to_email=address, kind="notice"))


def test_rfc2231_file_name_and_encoded_subject(db, on_commit_runs):
    outcome = inbound.receive(eml("rfc2231_filename.eml"))
    assert outcome.action == "opened"
    conversation = outcome.conversation
    assert conversation.subject == "Facture du mois de décembre"
    assert conversation.name == "José García"
    attachment = Attachment.objects.get(message__conversation=conversation)
    assert attachment.filename == "relevé de compte décembre.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.data.startswith(b"%PDF")
    assert len(acks("jose@example.net")) == 1


def test_quoted_printable_body_is_decoded(db, on_commit_runs):
    conversation = inbound.receive(eml("quoted_printable.eml")).conversation
    body = conversation.messages.get().body
    assert "résumé list stops at 1000 rows. Is this a limit of the plan" in body
    assert "Café au lait = good." in body


def test_a_known_customer_is_recognised_by_address_when_signed(customer, sign, on_commit_runs):
    conversation = inbound.receive(sign(eml("quoted_printable.eml"))).conversation
    assert conversation.user == customer
    assert conversation.account == customer.account


def test_nested_multipart_keeps_the_inline_image_and_refuses_svg(db, on_commit_runs):
    conversation = inbound.receive(eml("nested_inline.eml")).conversation
    message = conversation.messages.get()
    assert message.body.startswith("The editor shows this error")
    kept = list(Attachment.objects.filter(message=message))
    assert [(a.filename, a.content_type) for a in kept] == [("shot.png", "image/png")]
    # The SVG (a script inside) is not kept; the message says it was refused.
    assert "evil.svg is of a type we do not accept" in message.body


def test_a_dsn_answering_nothing_is_dropped_and_not_acknowledged(db, on_commit_runs):
    outcome = inbound.receive(eml("dsn.eml"))
    assert outcome.action == "dropped"
    assert not Conversation.objects.exists()
    assert not OutboundMail.objects.exists()


def test_reply_threads_by_references_though_the_subject_changed(staff, on_commit_runs):
    conversation = inbound.receive(eml("quoted_printable.eml")).conversation
    answer = services.reply(conversation, by=staff, body="Please try the export again.")
    sent = OutboundMail.objects.get(kind="support")
    assert answer.message_id == sent.uuid.hex
    # The client answers with our Message-ID in In-Reply-To only.
    our_id = f"<{sent.uuid.hex}@example.com>"
    outcome = inbound.receive(
        eml("reply_changed_subject.eml", IN_REPLY_TO=our_id, REFERENCES=our_id)
    )
    assert outcome.action == "added"
    assert outcome.conversation == conversation
    # Quoted history is cut off.
    assert outcome.message.body == "Thanks, that works now."
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.OPEN  # it was waiting on them


def test_reply_threads_by_our_reference_alone(db, on_commit_runs):
    conversation = inbound.receive(eml("quoted_printable.eml")).conversation
    ref = services.thread_id(conversation)
    outcome = inbound.receive(eml("reply_changed_subject.eml", IN_REPLY_TO="", REFERENCES=ref))
    assert outcome.conversation == conversation


def test_auto_reply_is_kept_but_never_reopens_nor_acknowledged(staff, on_commit_runs):
    conversation = inbound.receive(eml("quoted_printable.eml")).conversation
    services.reply(conversation, by=staff, body="Done.")
    services.set_status(conversation, status=Conversation.Status.SOLVED, by=staff)
    sent = OutboundMail.objects.get(kind="support")
    raw = eml("auto_reply.eml").replace(
        b"Auto-Submitted", f"In-Reply-To: <{sent.uuid.hex}@example.com>\nAuto-Submitted".encode()
    )
    before = OutboundMail.objects.count()
    outcome = inbound.receive(raw)
    assert outcome.action == "added" and outcome.message.automatic
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.SOLVED
    assert OutboundMail.objects.count() == before


def test_the_same_message_twice_is_taken_once(db, on_commit_runs):
    inbound.receive(eml("quoted_printable.eml"))
    assert inbound.receive(eml("quoted_printable.eml")).action == "duplicate"
    assert Message.objects.count() == 1


def test_a_malformed_message_is_refused_and_changes_nothing(db, on_commit_runs):
    with pytest.raises(inbound.Malformed):
        inbound.receive(eml("malformed.eml"))
    assert not Conversation.objects.exists()


def test_mail_from_our_own_address_is_dropped(db, on_commit_runs, settings):
    raw = eml("quoted_printable.eml").replace(
        b"Ada Lovelace <ada@example.org>", settings.OPERATOR["support_email"].encode()
    )
    assert inbound.receive(raw).action == "dropped"
    assert not Conversation.objects.exists()


def test_a_loop_of_new_mails_gets_few_acknowledgements(db, on_commit_runs, settings):
    # A robot that answers each acknowledgement with a new mail, without any header
    # that says it is automatic: the acknowledgements stop at the daily limit.
    for n in range(12):
        raw = eml("quoted_printable.eml").replace(b"<qp-1@", f"<loop-{n}@".encode())
        inbound.receive(raw)
    assert len(acks("ada@example.org")) == settings.DESK["acks_per_address_per_day"]


def test_a_large_attachment_is_refused_and_the_message_kept(db, on_commit_runs, settings):
    settings.DESK = {**settings.DESK, "attachment_max_bytes": 1024}
    msg = EmailMessage()
    msg["From"] = "ada@example.org"
    msg["To"] = "support@example.com"
    msg["Subject"] = "Big file"
    msg["Message-ID"] = "<big-1@example.org>"
    msg.set_content("Here is the big file.")
    msg.add_attachment(b"%PDF-1.4\n" + b"0" * 4096, maintype="application",
                       subtype="pdf", filename="big.pdf")  # fmt: skip
    conversation = inbound.receive(bytes(msg)).conversation
    assert "big.pdf is larger than" in conversation.messages.get().body
    assert not Attachment.objects.exists()


def test_a_message_over_the_size_limit_is_refused(db, settings):
    settings.DESK = {**settings.DESK, "message_max_bytes": 1000}
    raw = eml("quoted_printable.eml") + base64.b64encode(b"x" * 2000)
    with pytest.raises(inbound.Malformed):
        inbound.receive(raw)
