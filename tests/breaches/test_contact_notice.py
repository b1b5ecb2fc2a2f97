"""A customer whose contacts a breach touched sends them the ready notice with one click,
through the one pipeline and their own relay, under the notice purpose of the one
mailability rule: hard bounces skipped, the unsubscribed told; never twice (P33)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.breaches.test_report import scoped_breach
from tidings.audience import services as audience
from tidings.audience.models import Contact
from tidings.breaches import services
from tidings.breaches.models import Notice
from tidings.sending.models import OutboundMail


def _processor_notice(officer, tenant):  # type: ignore[no-untyped-def]
    incident = scoped_breach(officer)
    services.send_notices(incident, by=officer)
    return Notice.objects.get(user=tenant.users[0], role=Notice.Role.PROCESSOR)


@pytest.mark.promise("P33")
def test_the_customer_sends_the_ready_notice_to_the_contacts_touched_once(
    client, mailbox, privacy_officer, acme, globex
):
    bounced, unsubscribed, _plain = acme.contacts
    audience.set_status(bounced, Contact.Status.BOUNCED)
    audience.unsubscribe(unsubscribed)
    notice = _processor_notice(privacy_officer, acme)
    client.force_login(acme.users[0])
    page = client.get(f"/account/breach-notices/{notice.pk}/").content.decode()
    assert "Your contacts affected (approximately):</strong> 3" in page
    assert "found a breach of security" in page  # the ready notice, to edit
    mailbox.clear()
    data = {"subject": "About our newsletter's data", "text": "Your address was exposed."}
    response = client.post(f"/account/breach-notices/{notice.pk}/", data)
    assert response.status_code == 302, response.content
    told = sorted(m.to[0] for m in mailbox)
    assert told == sorted(c.email for c in acme.contacts[1:])  # not the bounced address
    assert all(m.subject == "About our newsletter's data" for m in mailbox)
    assert client.post(f"/account/breach-notices/{notice.pk}/", data).status_code == 302
    assert len(mailbox) == 2  # a second click tells nobody twice
    assert OutboundMail.objects.filter(account=acme.account, kind="contact").count() == 2
    notice.refresh_from_db()
    assert notice.contacts_told == 2 and notice.contacts_told_at is not None


def test_nothing_is_sent_without_a_text_nor_by_someone_else(
    client, mailbox, privacy_officer, acme, globex
):
    notice = _processor_notice(privacy_officer, acme)
    mailbox.clear()
    client.force_login(acme.users[0])
    response = client.post(f"/account/breach-notices/{notice.pk}/", {"subject": "x", "text": " "})
    assert response.status_code == 400
    client.force_login(globex.users[0])
    assert client.get(f"/account/breach-notices/{notice.pk}/").status_code == 404
    with pytest.raises(services.BreachError, match="not yours"):
        services.send_contact_notice(notice, by=globex.users[0], subject="s", text="t")
    controller = Notice.objects.get(user=acme.users[0], role=Notice.Role.CONTROLLER)
    with pytest.raises(services.BreachError, match="not yours"):
        services.send_contact_notice(controller, by=acme.users[0], subject="s", text="t")
    assert not mailbox


@pytest.mark.promise("P33")
def test_the_notice_page_shows_every_figure_of_the_severity_set(client, privacy_officer, acme):
    incident = scoped_breach(privacy_officer)
    services.assess_severity(
        incident, by=privacy_officer, dpc=Decimal("1"), ei=Decimal("1"),
        confidentiality=Decimal("0.25"), integrity=Decimal("0"), availability=Decimal("0"),
        malicious=Decimal("0.5"), level="medium", reason="addresses only",
    )  # fmt: skip
    services.send_notices(incident, by=privacy_officer)
    notice = Notice.objects.get(user=acme.users[0], role=Notice.Role.PROCESSOR)
    client.force_login(acme.users[0])
    page = client.get(f"/account/breach-notices/{notice.pk}/").content.decode()
    # The circumstances' figures, not a bare "+ CB)": the customer weighs their own risk.
    assert "EI 1.00 + CB 0.25 + 0.00 + 0.00 + 0.50)" in page
