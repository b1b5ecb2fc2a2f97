"""A contact erased at their own request is never mailed again by that customer: not
after an import of the same address, not after a form signup they did not confirm; only
a new, confirmed consent brings them back."""

from __future__ import annotations

import pytest

from tests.sending.conftest import add_contacts
from tests.transfer.conftest import prepare, report_rows, run
from tidings.audience import links, mailability, mailing_lists, rights, services, signup
from tidings.audience.models import Contact, MailingList
from tidings.campaigns.models import Campaign
from tidings.sending import lifecycle

# On-commit jobs run as in production, inside the test's transaction (tests/commits.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_commit_runs")]

ADDRESS = "gone@example.net"


def recipients(raw_sink) -> set[str]:  # type: ignore[no-untyped-def]
    """Who got a campaign (the confirmation mail of a signup goes through the same relay)."""
    return {rcpt for rcpts, raw in raw_sink.raw for rcpt in rcpts if b"\r\nList-Id:" in raw}


def another_campaign(campaign: Campaign, name: str) -> Campaign:
    copy = Campaign.objects.create(
        account=campaign.account,
        name=name,
        subject=campaign.subject,
        from_email=campaign.from_email,
        body=campaign.body,
    )
    copy.lists.set(campaign.lists.all())
    return copy


@pytest.mark.promise("P21")
def test_an_erased_contact_is_not_mailed_after_an_import_or_an_unconfirmed_signup(
    customer, account, newsletter, campaign, raw_sink, settings, tmp_path
):
    settings.TRANSFER_DIR = tmp_path / "transfer"
    newsletter.visibility = MailingList.Visibility.PUBLIC
    newsletter.optin = MailingList.OptIn.SINGLE
    newsletter.save()
    (fan,) = add_contacts(account, newsletter, 1)
    gone = services.add_contact(account, ADDRESS, name="Gone Person", lists=[newsletter])
    request, _ = rights.request_from_contact(gone, kind="erasure")
    rights.fulfil_erasure(account, request)

    # The customer imports an old file that still has the address: it is refused.
    job = run(
        prepare(customer, f"email,name\n{ADDRESS},Gone Person\n".encode(), lists=[newsletter])
    )
    assert any("suppression" in " ".join(row) for row in report_rows(job))
    assert not Contact.objects.filter(account=account, email=ADDRESS).exists()
    # Nor can they add it by hand.
    with pytest.raises(services.Suppressed):
        services.add_contact(account, ADDRESS, lists=[newsletter])
    # Someone types the address into the form (of a single opt-in list): that alone is no
    # consent of the person's; a confirmation mail goes, nothing else.
    form = mailing_lists.save_form(account, name="Footer", lists=[newsletter], consent_text="Yes")
    signup.request_signup(form, email=ADDRESS, lists=[newsletter], ip=None, user_agent="")
    assert not mailability.recipients(account, [newsletter.pk]).filter(email=ADDRESS).exists()

    lifecycle.start_campaign(campaign)
    assert recipients(raw_sink) == {fan.email}

    # The person confirms from the mail: a new, proven consent, and only now are they back.
    contact = Contact.objects.get(account=account, email=ADDRESS)
    token = links.confirmation_token(contact, [newsletter])
    signup.confirm_signup(token)
    raw_sink.raw.clear()
    lifecycle.start_campaign(another_campaign(campaign, "December news"))
    assert recipients(raw_sink) == {fan.email, ADDRESS}
