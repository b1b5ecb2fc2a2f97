"""Nobody sends as a domain they do not control (issue 13, finding 8). A customer's
domain is in From only once a TXT record proves it theirs and its DKIM key is found
published, read from a real DNS server on loopback (tests/dnsserver.py); until then
their mail goes out from the operator's address with their name and their own address
as Reply-To. A domain whose record disappears loses the proof."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import dkim
import dns.resolver
import pytest
from django.utils import timezone

from tests.dnsserver import DnsServer
from tests.sending.conftest import add_contacts
from tidings.accounts import apikeys
from tidings.campaigns.models import Campaign
from tidings.sending import domains, lifecycle, services
from tidings.sending.models import SendingDomain
from tidings.sending.tasks import recheck_sending_domains

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_commit_runs")]

OPERATOR_FROM = "no-reply@example.com"  # TIDINGS_FROM_EMAIL's address in the tests


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def publish(server: DnsServer, domain: SendingDomain, *, proof: bool = True) -> None:
    """What the customer publishes: the proof (at _tidings.<domain>) and the DKIM key."""
    if proof:
        server.set_txt(domain.proof_name, domain.proof_value)
    server.set_txt(domain.dns_name, domain.dns_value)


def dns_of(server: DnsServer):  # type: ignore[no-untyped-def]
    """dkimpy's DNS lookup, through the test's DNS server."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [server.host], server.port

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        answer = resolver.resolve(name.decode(), "TXT")
        return b"".join(b"".join(r.strings) for r in answer)

    return lookup


def test_an_unproven_domain_is_never_in_from_the_operators_address_is(
    account, newsletter, campaign, raw_sink
):
    # The customer asks for news@news.example.org and even made a key for it: no proof.
    services.add_sending_domain(account, "news.example.org")
    add_contacts(account, newsletter, 1)
    lifecycle.start_campaign(campaign)
    ((_, raw),) = raw_sink.raw
    message = parsed(raw)
    assert message["From"].addresses[0].addr_spec == OPERATOR_FROM
    assert message["From"].addresses[0].display_name == "Example News"
    assert message["Reply-To"] == "news@news.example.org"
    assert "news.example.org" not in message["Message-ID"]
    assert b"d=news.example.org" not in raw  # not signed as the domain either


def test_a_transactional_message_cannot_claim_a_domain_either(client, customer, relay, smtp_server):
    _, key = apikeys.create_api_key(customer.account, name="shop", by=customer)
    response = client.post(
        "/api/v1/tx",
        data={"to": "victim@example.net", "subject": "Your bank", "body": "Log in",
              "from_email": "security@bank.example"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip
    assert response.status_code == 202
    (message,) = smtp_server.to("victim@example.net")
    assert message["From"].addresses[0].addr_spec == OPERATOR_FROM
    assert message["Reply-To"] == "security@bank.example"


def test_a_domain_proven_in_dns_is_used_in_from_and_signed_with_its_key(
    account, newsletter, campaign, raw_sink, dns_server
):
    domain = services.add_sending_domain(account, "news.example.org")
    publish(dns_server, domain)
    assert domains.check_domain(domain).proven_at is not None
    add_contacts(account, newsletter, 1)
    lifecycle.start_campaign(campaign)
    ((_, raw),) = raw_sink.raw
    message = parsed(raw)
    assert message["From"].addresses[0].addr_spec == "news@news.example.org"
    assert message["Reply-To"] is None
    assert dkim.verify(raw, dnsfunc=dns_of(dns_server))  # against the published key


def test_the_proof_may_also_be_at_the_domain_itself(account, dns_server):
    domain = services.add_sending_domain(account, "news.example.org")
    dns_server.set_txt("news.example.org", "v=spf1 -all", domain.proof_value)
    dns_server.set_txt(domain.dns_name, domain.dns_value)
    assert domains.check_domain(domain).proven_at is not None


@pytest.mark.parametrize("missing", ["proof", "dkim", "wrong key", "another token"])
def test_a_domain_without_both_records_is_not_proven(account, dns_server, missing):
    domain = services.add_sending_domain(account, "news.example.org")
    publish(dns_server, domain)
    if missing == "proof":
        dns_server.remove(domain.proof_name)
    elif missing == "dkim":
        dns_server.remove(domain.dns_name)
    elif missing == "wrong key":
        dns_server.set_txt(domain.dns_name, "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A")
    else:
        dns_server.set_txt(domain.proof_name, "tidings-verification=" + "0" * 32)
    checked = domains.check_domain(domain)
    assert checked.proven_at is None
    assert SendingDomain.objects.get(pk=domain.pk).proven_at is None


def test_another_accounts_proof_proves_nothing_for_this_account(
    account, other_customer, dns_server
):
    theirs = services.add_sending_domain(other_customer.account, "news.example.org")
    publish(dns_server, theirs)
    domains.check_domain(theirs)
    mine = services.add_sending_domain(account, "news.example.org")
    dns_server.set_txt(mine.dns_name, mine.dns_value)  # the key alone, no proof of mine
    assert domains.check_domain(mine).proven_at is None


def test_a_domain_whose_record_disappears_loses_the_proof_at_the_next_check(
    account, dns_server, time_machine
):
    domain = services.add_sending_domain(account, "news.example.org")
    publish(dns_server, domain)
    domains.check_domain(domain)
    dns_server.remove(domain.proof_name)
    assert recheck_sending_domains() == 0  # checked less than a day ago: not due
    assert SendingDomain.objects.get(pk=domain.pk).proven_at is not None
    time_machine.move_to(timezone.now() + timedelta(hours=25))
    assert recheck_sending_domains() == 1
    assert SendingDomain.objects.get(pk=domain.pk).proven_at is None


def test_a_resolver_that_does_not_answer_changes_no_verdict(account, dns_server, settings):
    domain = services.add_sending_domain(account, "news.example.org")
    publish(dns_server, domain)
    domains.check_domain(domain)
    dns_server.stop()  # nobody answers on that port any more
    settings.DNS_TIMEOUT_SECONDS = 1
    checked = domains.check_domain(domain)
    assert checked.proven_at is not None
    assert "DNS did not answer" in SendingDomain.objects.get(pk=domain.pk).dns_status["error"]


def test_check_now_on_the_settings_page_proves_it_and_shows_spf_and_dmarc(
    client, customer, account, dns_server
):
    domain = services.add_sending_domain(account, "news.example.org")
    client.force_login(customer)
    page = client.get("/sending/").content.decode()
    assert domain.proof_name in page and domain.proof_value in page and "not proven yet" in page
    publish(dns_server, domain)
    dns_server.set_txt("news.example.org", "v=spf1 include:_spf.example.com -all")
    dns_server.set_txt("_dmarc.news.example.org", "v=DMARC1; p=reject")
    response = client.post(f"/sending/domains/{domain.pk}/check/", follow=True)
    page = response.content.decode()
    assert "is proven yours" in page
    assert "v=spf1 include:_spf.example.com -all" in page and "aligned with From" in page
    assert "v=DMARC1; p=reject" in page and "passes by alignment" in page
    assert SendingDomain.objects.get(pk=domain.pk).proven_at is not None


def test_check_now_is_for_the_owners_domain_only(client, other_customer, account, dns_server):
    domain = services.add_sending_domain(account, "news.example.org")
    publish(dns_server, domain)
    client.force_login(other_customer)
    assert client.post(f"/sending/domains/{domain.pk}/check/").status_code == 404
    assert SendingDomain.objects.get(pk=domain.pk).checked_at is None


def test_the_campaign_page_says_which_from_it_will_go_out_with(client, customer, campaign):
    client.force_login(customer)
    page = client.get(f"/campaigns/{campaign.uuid}/").content.decode()
    assert "goes out from no-reply@example.com, with replies to news@news.example.org" in page


def test_a_campaign_going_out_still_says_which_from_it_goes_out_with(client, customer, campaign):
    """An automation's message is always sending: its page showed the From asked for,
    and not the operator's it went out with (the walk)."""
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    client.force_login(customer)
    page = client.get(f"/campaigns/{campaign.uuid}/").content.decode()
    assert "goes out from no-reply@example.com, with replies to news@news.example.org" in page


def test_the_send_page_names_the_from_the_campaign_really_goes_out_with(client, customer, campaign):
    client.force_login(customer)
    page = client.get(f"/campaigns/{campaign.uuid}/send/").content.decode()
    assert "From: no-reply@example.com (replies to news@news.example.org)" in page
