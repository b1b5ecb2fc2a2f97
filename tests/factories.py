from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from tidings.accounts import apikeys
from tidings.accounts.models import Account, User
from tidings.audience import rights
from tidings.audience import services as audience
from tidings.audience.models import ConsentProof, MailingList, Segment, SubscriptionForm
from tidings.automations import services as automations
from tidings.automations import splittests, webhooks
from tidings.billing import services as billing
from tidings.billing.models import Offer, Price, VatTreatment
from tidings.breaches.models import Incident, Notice
from tidings.campaigns.models import Campaign, Layout, MediaImage, SavedTemplate
from tidings.desk import attachments, followups
from tidings.desk import services as desk
from tidings.privacy.models import AccountExport

PASSWORD = "correct horse battery staple"


def campaign_status(status: str, at: datetime | None = None) -> dict[str, Any]:
    """The fields of a campaign put straight into `status`: one that ended (sent or
    cancelled) has its end, any other has none (the model's constraint)."""
    ended = (at or timezone.now()) if status in Campaign.ENDED else None
    return {"status": status, "finished_at": ended}


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Organisation {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.org")
    name = factory.Sequence(lambda n: f"Person {n}")
    account = factory.SubFactory(AccountFactory)
    email_confirmed_at = factory.LazyFunction(timezone.now)
    password = factory.django.Password(PASSWORD)


class StaffFactory(UserFactory):
    account = None
    is_staff = True
    staff_role = User.StaffRole.SUPPORT


def populate_account(account: Account) -> None:
    """One of everything an account can own, made through the services where they exist.

    Tenant isolation and erasure tests use it: add each new kind of data here.
    """
    user = account.users.first()
    assert user is not None
    apikeys.create_api_key(account, name="The account's key", by=user)
    newsletter = MailingList.objects.create(account=account, name="The account's list")
    carol = audience.add_contact(
        account,
        "carol@example.net",
        name="Carol Contact",
        attributes={"city": "Carolton"},
        lists=[newsletter],
        proof={"method": ConsentProof.Method.FORM, "ip_address": "203.0.113.7",
               "user_agent": "CarolBrowser/1.0", "consent_text": "Yes please"},
    )  # fmt: skip
    rights.request_from_contact(carol, kind="erasure", details="Carol asks to be forgotten")
    Segment.objects.create(account=account, name="The account's segment", rules={})
    form = SubscriptionForm.objects.create(
        account=account, name="The account's form", consent_text="yes"
    )
    form.lists.add(newsletter)
    layout = Layout.objects.create(
        account=account, name="The account's layout", html="{{ content }}"
    )
    campaign = Campaign.objects.create(
        account=account,
        name="The account's campaign",
        subject="Hello",
        from_email="news@example.net",
        layout=layout,
    )
    SavedTemplate.objects.create(
        account=account, name="The account's template", body="<p>The account's own look</p>"
    )
    MediaImage.objects.create(
        account=account, name="the-accounts-image.png", content_type="image/png",
        width=1, height=1, size=4, data=b"\x89PNG",
    )  # fmt: skip
    # A support conversation with an attachment and a pending follow-up.
    conversation = desk.open_conversation(
        user=user,
        subject="The account's support request",
        body="The account's question to support",
        attachments=[attachments.accept("the-accounts-note.txt", b"The account's file")],
    )
    agent = User.objects.filter(is_staff=True).first() or StaffFactory()
    followups.schedule(
        conversation,
        by=agent,
        due_at=timezone.now() + timedelta(days=7),
        body="The account's follow-up",
    )
    # An order of a credit pack, paid on the test gateway (its raw webhooks are kept).
    offer, _ = Offer.objects.get_or_create(
        kind=Offer.Kind.PACK, name="A pack of credits", credits=100,
        vat_treatment=VatTreatment.STANDARD, vat_rate=Decimal("21.00"),
    )  # fmt: skip
    Price.objects.get_or_create(offer=offer, currency="EUR", defaults={"amount": Decimal("5")})
    order = billing.place_order(
        account_id=account.pk, offer_id=offer.pk, currency="EUR", by=user,
        buyer_kind="company", billing_name="The account's billing name",
        billing_address="1 The account's street", billing_country="BE",
    )  # fmt: skip
    billing.start_checkout(order, success_url="http://t/ok", cancel_url="http://t/no")
    order.refresh_from_db()
    billing.pay_on_test_gateway(order.gateway_ref, "pay")
    # An automation, an A/B test and a webhook endpoint.
    automation = automations.create_automation(
        account, name="The account's automation", mailing_list=newsletter, by=user
    )
    automations.add_step(
        automation, wait_days=1, subject="Welcome", from_email="news@example.net", by=user
    )
    splittests.create_test(
        campaign,
        subjects=["The account's other subject"], test_percent=20, metric="opens",
        wait_hours=1, by=user,
    )  # fmt: skip
    webhooks.create_endpoint(
        account,
        url="https://hooks.example.net/the-account",
        events=["contact.subscribed"],
        by=user,
    )
    # An archive of all the account's data, as the job leaves it (without its file: the
    # tests that need the file ask for one through tidings.privacy.portability).
    AccountExport.objects.create(
        account=account, requested_by=user, format="csv", status=AccountExport.Status.FAILED
    )
    # A breach notice the account's user was sent and has read (the register keeps it,
    # unlinked, after erasure).
    incident = Incident.objects.create(
        summary="A breach", detected_at=timezone.now(), aware_at=timezone.now()
    )
    Notice.objects.create(
        incident=incident, role=Notice.Role.CONTROLLER, account=account,
        account_ref=account.pk, user=user, user_ref=user.pk, acknowledged_at=timezone.now(),
    )  # fmt: skip
