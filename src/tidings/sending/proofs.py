"""Test sends ("proofs") of a campaign: the message a contact would get, built as the
engine builds it (the layout, the footer with the unsubscribe line and the postal
address), sent through the account's relay and signed with its DKIM key like the
campaign itself, to up to five of the customer's own addresses, its subject marked
"[Test] ". The links in a proof
lead nowhere: a tester who clicks "unsubscribe" must not unsubscribe the contact the
proof was personalised for."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import User
from tidings.audience.models import Contact
from tidings.campaigns import rendering
from tidings.campaigns.models import Campaign
from tidings.campaigns.services import (
    TEST_RECIPIENTS_MAX,
    CampaignError,
    spend_test_quota,
)
from tidings.core.mail import Kind, OutboundMessage, Purpose, post
from tidings.sending.mailer import CampaignMailer, Recipient

# Every test message says so in its subject, where the recipient sees it first.
TEST_PREFIX = "[Test] "


def send_test(
    campaign: Campaign, *, to: Sequence[str], contact: Contact | None = None, by: User | None
) -> int:
    """Post the campaign, personalised for `contact` (or a made-up one), to each of `to`
    separately. Returns the number posted."""
    account = campaign.account
    if not account.may_process:
        raise CampaignError(_("This account is closed or restricted: it sends nothing."))
    if contact is not None and contact.account_id != account.pk:
        raise CampaignError(_("That contact does not belong to this account."))
    if not 1 <= len(to) <= TEST_RECIPIENTS_MAX:
        raise CampaignError(
            _("A test goes to one to %(TEST_RECIPIENTS_MAX)s addresses.")
            % {"TEST_RECIPIENTS_MAX": TEST_RECIPIENTS_MAX}
        )
    person = contact or rendering.sample_contact(account)
    mailer = CampaignMailer(campaign)
    recipient = Recipient(
        delivery_id=0,
        message_id="",
        email=person.email,
        name=person.name,
        attributes=person.attributes or {},
        uuid=person.uuid.hex,
        allow_tracking=False,
    )
    try:
        subject, html, text = mailer.proof(recipient)
    except rendering.TemplateError as error:
        raise CampaignError(
            _("The campaign cannot be rendered: %(error)s") % {"error": error}
        ) from None
    spend_test_quota(account, len(to))
    for address in to:
        post(
            OutboundMessage(
                to=address,
                subject=TEST_PREFIX + subject,
                text=text,
                html=html,
                from_email=campaign.from_email,
                from_name=campaign.from_name,
                reply_to=campaign.reply_to,
                purpose=Purpose.SERVICE,
                kind=Kind.TEST,
                account_id=account.pk,
                user_id=by.pk if by is not None and by.email == address else None,
            )
        )
    return len(to)
