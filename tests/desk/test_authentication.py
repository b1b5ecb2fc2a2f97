"""Anyone can write a customer's address in From: inbound mail is tied to the customer's
account, and continues their conversation, only when its sender is verified (a DKIM
signature aligned with From, checked against the key in DNS, or the operator's own MTA's
Authentication-Results). Real .eml files signed by a test key; DNS answered by the
loopback DNS server (tests/dnsserver.py)."""

from __future__ import annotations

from pathlib import Path

import dkim
import pytest

from tests.desk.test_webhook import KEY, SECRET, form, post
from tidings.desk import authentication, inbound, services
from tidings.desk.models import Conversation
from tidings.sending.models import OutboundMail

EML = Path(__file__).parent / "eml"
OUR_MTA = "mx.support.example.com"


def eml(name: str = "quoted_printable.eml", **fill: str) -> bytes:
    raw = (EML / name).read_bytes()
    for key, value in fill.items():
        raw = raw.replace(f"{{{key}}}".encode(), value.encode())
    return raw


def with_header(raw: bytes, header: str) -> bytes:
    """A header on top, as an MTA on the way adds one."""
    return header.encode() + b"\n" + raw


def results(authserv: str, outcome: str = "dmarc=pass header.from=example.org") -> str:
    return f"Authentication-Results: {authserv}; spf=pass smtp.mailfrom=example.org; {outcome}"


def test_a_signed_mail_from_a_customer_is_tied_to_their_account(customer, sign, on_commit_runs):
    outcome = inbound.receive(sign(eml()))
    conversation = outcome.conversation
    assert conversation.sender_verified
    assert (conversation.user, conversation.account) == (customer, customer.account)


def test_a_signature_of_a_parent_or_child_domain_is_aligned(sign, dns_server):
    raw = eml().replace(b"ada@example.org", b"ada@mail.example.org")
    assert authentication.check(sign(raw, "example.org")) == authentication.Verdict(True, "dkim")
    assert authentication.check(sign(eml(), "mail.example.org")).verified


@pytest.mark.promise("P32")
def test_a_forged_from_lands_unverified_and_tied_to_no_account(
    customer, sign, on_commit_runs, console, staff
):
    # Signed, but by the forger's own domain: the signature verifies, it is not aligned.
    forged = sign(eml(), "attacker.example")
    outcome = inbound.receive(forged)
    conversation = outcome.conversation
    assert outcome.action == "opened"  # nothing lost
    assert not conversation.sender_verified
    assert (conversation.user, conversation.account) == (None, None)
    # Not in the customer's own support page either.
    assert not Conversation.objects.filter(user=customer).exists()


def test_an_unsigned_mail_and_a_broken_signature_are_not_verified(customer, sign, db):
    assert not authentication.check(eml()).verified
    signed = sign(eml())
    tampered = signed.replace(b"1000 rows", b"9000 rows")
    assert authentication.check(signed).verified
    assert not authentication.check(tampered).verified


def test_a_signature_of_part_of_the_body_proves_nothing(sign, db):
    # With l=, the signature covers the body's first bytes only: anyone may append.
    signed = sign(eml(), length=True)
    appended = signed + b"\nPlease send my invoices to mallory@example.net.\n"
    assert dkim.verify(appended, dnsfunc=authentication._dns_txt)  # DKIM itself says pass
    assert not authentication.check(appended).verified


def test_a_key_not_published_proves_nothing(customer, sign, dns_server, on_commit_runs):
    signed = sign(eml())
    dns_server.remove("test._domainkey.example.org")
    conversation = inbound.receive(signed).conversation
    assert not conversation.sender_verified and conversation.user is None


def test_a_dns_that_does_not_answer_proves_nothing_and_loses_nothing(
    customer, sign, dns_server, on_commit_runs
):
    signed = sign(eml())
    dns_server.stop()
    conversation = inbound.receive(signed).conversation
    assert not conversation.sender_verified and conversation.messages.count() == 1


def test_a_forged_authentication_results_is_ignored(customer, settings, on_commit_runs):
    settings.DESK_INBOUND_AUTHSERV_ID = OUR_MTA
    # The sender writes a result in the name of another server (or of a server when none
    # is trusted): it proves nothing.
    raw = with_header(eml(), results("mx.attacker.example"))
    assert not authentication.check(raw).verified
    settings.DESK_INBOUND_AUTHSERV_ID = ""
    conversation = inbound.receive(with_header(eml(), results(OUR_MTA))).conversation
    assert not conversation.sender_verified and conversation.user is None


def test_the_trusted_mtas_result_verifies(customer, settings, on_commit_runs):
    settings.DESK_INBOUND_AUTHSERV_ID = OUR_MTA
    conversation = inbound.receive(with_header(eml(), results(OUR_MTA + " 1"))).conversation
    assert conversation.sender_verified and conversation.user == customer
    dkim_pass = results(OUR_MTA, "dkim=pass (good signature) header.d=example.org")
    assert authentication.check(with_header(eml(), dkim_pass)).verified


@pytest.mark.parametrize(
    "outcome",
    [
        "dmarc=fail header.from=example.org",
        "dmarc=pass header.from=attacker.example",
        "dkim=pass header.d=attacker.example",
    ],
)
def test_the_trusted_mtas_result_must_pass_for_the_from_domain(customer, settings, outcome):
    settings.DESK_INBOUND_AUTHSERV_ID = OUR_MTA
    assert not authentication.check(with_header(eml(), results(OUR_MTA, outcome))).verified


def test_only_the_topmost_result_of_the_trusted_mta_counts(settings):
    settings.DESK_INBOUND_AUTHSERV_ID = OUR_MTA
    # Our MTA says fail on top; the sender's forged "pass" in our MTA's name lies below.
    raw = with_header(eml(), results(OUR_MTA))
    raw = with_header(raw, results(OUR_MTA, "dmarc=fail header.from=example.org"))
    assert not authentication.check(raw).verified


def test_an_unverified_reply_does_not_continue_the_customers_conversation(
    customer, staff, sign, on_commit_runs
):
    conversation = inbound.receive(sign(eml())).conversation
    services.reply(conversation, by=staff, body="Please try the export again.")
    sent = OutboundMail.objects.get(kind="support")
    our_id = f"<{sent.uuid.hex}@example.com>"
    reply = eml("reply_changed_subject.eml", IN_REPLY_TO=our_id, REFERENCES=our_id)
    forged = inbound.receive(reply)
    assert forged.action == "opened" and forged.conversation != conversation
    assert not forged.conversation.sender_verified and forged.conversation.user is None
    # The same reply, signed: it continues the conversation.
    proven = inbound.receive(sign(reply.replace(b"Message-ID: <", b"Message-ID: <signed-")))
    assert proven.action == "added" and proven.conversation == conversation


def test_the_mailgun_webhook_trusts_only_the_configured_results(
    client, customer, settings, on_commit_runs
):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET,
                        "MAILGUN_WEBHOOK_SIGNING_KEY": KEY}  # fmt: skip
    settings.DESK_INBOUND_AUTHSERV_ID = "mx.mailgun.example"
    data = form()
    data["body-mime"] = results("mx.mailgun.example") + "\n" + data["body-mime"]
    assert post(client, data).status_code == 200
    assert Conversation.objects.get().user == customer


@pytest.mark.promise("P7")
def test_staff_are_warned_and_see_no_history_beside_an_unverified_mail(
    console, staff, customer, sign, on_commit_runs
):
    theirs = inbound.receive(sign(eml())).conversation
    forged_raw = sign(eml().replace(b"<qp-1@", b"<forged-1@"), "attacker.example")
    forged = inbound.receive(forged_raw).conversation
    client = console(staff)
    queue = client.get("/staff/desk/").text
    assert queue.count("sender not verified") == 1
    shown = client.get(f"/staff/desk/{forged.pk}/").text
    assert "Sender not verified: nothing proves that ada@example.org wrote this" in shown
    assert f"/staff/desk/{theirs.pk}/" not in shown  # not the customer's history
    assert "The customer&#x27;s account data" not in shown  # nor their data
    # Beside the customer's own, proven mail, their history is shown as before.
    assert "Sender not verified" not in client.get(f"/staff/desk/{theirs.pk}/").text


def test_an_unverified_automatic_mail_is_kept_on_the_thread_and_marked(
    console, staff, customer, sign, on_commit_runs
):
    conversation = inbound.receive(sign(eml())).conversation
    services.reply(conversation, by=staff, body="Done.")
    sent = OutboundMail.objects.get(kind="support")
    raw = eml("auto_reply.eml").replace(
        b"Auto-Submitted", f"In-Reply-To: <{sent.uuid.hex}@example.com>\nAuto-Submitted".encode()
    )
    outcome = inbound.receive(raw)
    assert outcome.conversation == conversation and not outcome.message.sender_verified
    assert conversation.messages.get(direction="in", automatic=False).sender_verified
    shown = console(staff).get(f"/staff/desk/{conversation.pk}/").text
    assert shown.count("sender not verified") == 1 and "Sender not verified:" not in shown


# --- ARC: mail a trusted forwarder passed on (its DKIM signature lost on the way) ---------

LIST_HOST = "lists.example.net"


def forwarded(sign) -> bytes:  # type: ignore[no-untyped-def]
    """The customer's signed mail as a list host changes it (a footer): the DKIM
    signature no longer verifies, only the forwarder's ARC seal can vouch for it."""
    return sign(eml()).replace(b"good.", b"good.\n-- \nThe customers' list\n")


@pytest.fixture
def trusted_list(settings):  # type: ignore[no-untyped-def]
    settings.DESK_INBOUND_ARC_SEALERS = [LIST_HOST, "mx.support.example.com"]


def test_a_chain_sealed_by_a_trusted_forwarder_verifies_the_sender(
    customer, sign, arc_seal, trusted_list, on_commit_runs
):
    raw = forwarded(sign)
    assert not authentication.check(raw).verified  # the footer broke DKIM
    sealed = arc_seal(raw)
    assert authentication.check(sealed) == authentication.Verdict(True, "arc")
    conversation = inbound.receive(sealed).conversation
    assert conversation.sender_verified and conversation.user == customer
    # Through the operator's own MX, which seals again on top: still trusted.
    again = arc_seal(
        sealed, "mx.support.example.com", "arc=pass; dmarc=pass header.from=example.org"
    )
    assert authentication.check(again).verified


@pytest.mark.promise("P32")
def test_a_chain_sealed_by_anyone_else_proves_nothing(
    customer, sign, arc_seal, trusted_list, on_commit_runs
):
    # A valid chain, but the forwarder is not named in TIDINGS_INBOUND_ARC_SEALERS.
    sealed = arc_seal(forwarded(sign), "relay.attacker.example")
    assert not authentication.check(sealed).verified
    conversation = inbound.receive(sealed).conversation
    assert not conversation.sender_verified and conversation.user is None
    # A trusted hop below an untrusted one on top: the top one could have changed it.
    on_top = arc_seal(arc_seal(forwarded(sign)), "relay.attacker.example", "arc=pass")
    assert not authentication.check(on_top).verified


def test_a_trusted_chain_vouches_only_for_what_the_forwarder_saw(
    sign, arc_seal, trusted_list, settings, db
):
    # The forwarder saw no pass: the seal is genuine, the sender is not proven.
    failed = arc_seal(forwarded(sign), results="dkim=fail header.d=example.org; dmarc=fail")
    assert not authentication.check(failed).verified
    # A pass for another domain than the From's.
    other = arc_seal(forwarded(sign), results="dmarc=pass header.from=attacker.example")
    assert not authentication.check(other).verified
    # Changed after it was sealed: the chain no longer validates.
    sealed = arc_seal(forwarded(sign))
    assert authentication.check(sealed).verified
    assert not authentication.check(sealed.replace(b"1000 rows", b"9000 rows")).verified
    # No trusted forwarder configured: no chain counts.
    settings.DESK_INBOUND_ARC_SEALERS = []
    assert not authentication.check(sealed).verified


def test_a_chain_whose_key_is_not_published_proves_nothing(
    sign, arc_seal, trusted_list, dns_server, db
):
    sealed = arc_seal(forwarded(sign))
    dns_server.records.pop(f"test._domainkey.{LIST_HOST}")
    assert not authentication.check(sealed).verified
