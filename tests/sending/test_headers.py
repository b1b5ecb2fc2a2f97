"""Each message: a unique Message-ID on the sending domain, RFC 8058 one-click
unsubscribe headers, List-Id, an unsubscribe link in the body, and a DKIM signature
that verifies with the published key."""

from __future__ import annotations

import email
import email.policy

import dkim
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.sending.conftest import add_contacts, proven
from tidings.audience import services as audience
from tidings.sending import lifecycle, services
from tidings.sending.message import Skeleton, _relaxed_body, dkim_sign, dot_stuff, generate_dkim_key
from tidings.sending.models import Delivery, SendingDomain

# On-commit jobs run as in production, inside the test's transaction (tests/commits.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_commit_runs")]


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_every_message_has_its_own_id_and_one_click_unsubscribe(
    account, newsletter, campaign, raw_sink
):
    services.set_tracking(account, "aggregate", unsubscribe_mailto="leave@news.example.org")
    proven(services.add_sending_domain(account, "news.example.org"))
    add_contacts(account, newsletter, 3)
    lifecycle.start_campaign(campaign)
    messages = [parsed(raw) for _, raw in raw_sink.raw]
    ids = {m["Message-ID"] for m in messages}
    assert len(ids) == 3 and all(i.endswith("@news.example.org>") for i in ids)
    assert ids == set(Delivery.objects.values_list("message_id", flat=True))
    for message in messages:
        unsubscribe = message["List-Unsubscribe"]
        assert "/oneclick/" in unsubscribe and "<mailto:leave@news.example.org" in unsubscribe
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert newsletter.uuid.hex in message["List-Id"]
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        https_url = unsubscribe.split(",")[0].strip("<> ")
        assert https_url in html.replace("&amp;", "&") and https_url in text
        assert message["Precedence"] is None  # see docs/sending.md


def test_messages_from_a_sending_domain_carry_a_valid_dkim_signature(
    account, newsletter, campaign, raw_sink
):
    domain = proven(services.add_sending_domain(account, "news.example.org"))
    add_contacts(account, newsletter, 1)
    lifecycle.start_campaign(campaign)
    ((_, raw),) = raw_sink.raw
    assert raw.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"tidings._domainkey.news.example.org."
        return domain.dns_value.encode()

    assert dkim.verify(raw, dnsfunc=dns)
    signature = parsed(raw)["DKIM-Signature"]
    assert "list-unsubscribe-post" in signature.lower().replace(" ", "")
    # Any change to a signed header breaks it.
    assert not dkim.verify(raw.replace(b"Subject: News", b"Subject: Nevs"), dnsfunc=dns)


def test_the_private_key_is_encrypted_at_rest_and_shown_only_as_a_dns_record(account):
    domain = services.add_sending_domain(account, "News.Example.org")
    assert domain.domain == "news.example.org"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key FROM sending_sendingdomain WHERE id = %s", [domain.pk])
        stored = cursor.fetchone()[0]
    assert "PRIVATE KEY" not in stored
    assert "PRIVATE KEY" in SendingDomain.objects.get(pk=domain.pk).private_key
    assert domain.dns_name == "tidings._domainkey.news.example.org"
    assert domain.dns_value.startswith("v=DKIM1; k=rsa; p=MII")


@pytest.mark.parametrize("bad", ["", "not a domain", "exa mple.com", "-x.com", "a" * 300])
def test_a_bad_domain_is_refused(account, bad):
    with pytest.raises(services.SettingsError):
        services.add_sending_domain(account, bad)
    assert not SendingDomain.objects.exists()


def test_no_header_can_be_injected_through_names_or_subjects(
    account, newsletter, campaign, raw_sink
):

    campaign.from_name = "News\r\nBcc: victim@example.com"
    campaign.subject = "Hi {{ contact.name }}"
    campaign.save()
    audience.add_contact(
        account, "x@example.net", name="Eve\nBcc: spy@example.com", lists=[newsletter]
    )
    lifecycle.start_campaign(campaign)
    ((rcpts, raw),) = raw_sink.raw
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert rcpts == ["x@example.net"]
    assert b"\r\nBcc:" not in head and b"\nBcc:" not in head


@pytest.mark.parametrize(
    ("data", "on_the_wire"),
    [
        (b"Subject: x\r\n\r\nplain\r\n", b"Subject: x\r\n\r\nplain\r\n"),
        (b".first line\r\n", b"..first line\r\n"),
        (b"a\r\n.\r\nb\r\n..c\r\nd.e\r\n", b"a\r\n..\r\nb\r\n...c\r\nd.e\r\n"),
        (b"a\r\n.", b"a\r\n.."),
    ],
)
def test_a_line_that_starts_with_a_dot_gets_another_on_the_wire(data, on_the_wire):
    """RFC 5321 4.5.2: otherwise a line of one dot would end the message early, and the
    receiver would drop the first dot of every other such line."""

    assert dot_stuff(data) == on_the_wire


@given(
    st.lists(st.sampled_from([b" ", b"\t", b"a", b"b", b".", b"\r\n"]), max_size=40).map(b"".join)
)
def test_the_signers_body_canonicalisation_is_dkimpys(body):
    """Tidings signs with its own DKIM signer (dkimpy's RSA is 20 times slower); its
    relaxed body canonicalisation must be RFC 6376's, as dkimpy computes it."""
    from dkim.canonicalization import Relaxed

    assert _relaxed_body(body) == Relaxed.canonicalize_body(body)


def test_a_long_international_subject_is_folded_with_crlf_and_signed(account):

    private, public = generate_dkim_key()
    skeleton = Skeleton.make(from_name="Zoë", from_email="news@news.example.org")
    data = skeleton.build(
        to="r@example.net", subject="Café, crème et brioches " * 6, html="<p>x</p>",
        text="x", message_id="<m@news.example.org>",
    )  # fmt: skip
    head = data.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in head.replace(b"\r\n", b"")  # no bare line feed in a header
    signed = dkim_sign(data, domain="news.example.org", selector="t", private_key=private)
    assert dkim.verify(
        signed, dnsfunc=lambda name, timeout=5: f"v=DKIM1; k=rsa; p={public}".encode()
    )
