"""Data map entries of automations: who is in which automation, and which step ran for
whom (P20: in the "all my data" archive; the contact's view and erasure read them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from tidings.automations.models import (
    Automation,
    Enrolment,
    PendingEntry,
    Recheck,
    SplitTest,
    Step,
    StepRun,
    TriggerEvent,
    Variant,
    WebhookEndpoint,
    WebhookMessage,
)
from tidings.core import retention
from tidings.core.datamap import (
    Column,
    ContactErasure,
    ContactPart,
    Erasure,
    LegalBasis,
    Owner,
    declare_free_of_personal_data,
    register,
)

CONTACT_DATA = _("the customer's contacts (application data)")
# The webhooks' delivery log (with the events' contents) is kept this long (the
# entry's retention text says it in words).
WEBHOOK_DAYS = 30
# Events posted to start automations are kept this long (their ids deduplicate).
EVENT_DAYS = 90

declare_free_of_personal_data(
    Automation, "the customer's automations: name, trigger, status", account_path="account"
)
declare_free_of_personal_data(
    SplitTest, "the customer's A/B tests: settings and winner", account_path="account"
)
declare_free_of_personal_data(
    Variant, "the variants of the customer's A/B tests", account_path="test__account"
)
declare_free_of_personal_data(
    Step, "the steps of the customer's automations", account_path="automation__account"
)

register(
    Enrolment,
    owner=Owner.CUSTOMER,
    category=CONTACT_DATA,
    purpose=_("moving each contact through an automation once, step by step"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("as long as the automation and the contact exist; erased with either"),
    personal_fields=["status", "step", "arrived_at", "due_at", "round", "entered_at", "left_at"],
    erase=Erasure.DELETE,
    account_path="automation__account",
    contact=ContactPart(
        title=_("Automations you are in"),
        path="contact",
        columns=(
            Column(_("automation"), "automation__name"),
            Column(_("status"), "status"),
            Column(_("entered"), "entered_at"),
            Column(_("next step due"), "due_at"),
        ),
        position=62,
        erase=ContactErasure.DELETE,
    ),
)
register(
    StepRun,
    owner=Owner.CUSTOMER,
    category=CONTACT_DATA,
    purpose=_("running each step of an automation at most once for each contact"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("as long as the automation and the contact exist; erased with either"),
    personal_fields=["round", "ran_at", "met"],
    erase=Erasure.DELETE,
    account_path="step__automation__account",
    contact=ContactPart(
        title=_("Automation steps done for you"),
        path="contact",
        columns=(
            Column(_("automation"), "step__automation__name"),
            Column(_("step"), "step__position"),
            Column(_("round"), "round"),
            Column(_("done"), "ran_at"),
            # A condition's outcome (yes or no); empty for the other steps.
            Column(_("condition met"), "met"),
        ),
        position=63,
        erase=ContactErasure.DELETE,
    ),
)

register(
    PendingEntry,
    owner=Owner.CUSTOMER,
    category=CONTACT_DATA,
    purpose=_("entering a contact into an automation whose trigger fired for them"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("until the next pass of the scheduler (a minute), then deleted"),
    personal_fields=["at"],
    erase=Erasure.DELETE,
    account_path="automation__account",
    contact=ContactPart(
        title=_("Automations you are about to enter"),
        path="contact",
        columns=(Column(_("automation"), "automation__name"), Column(_("since"), "at")),
        position=65,
        erase=ContactErasure.DELETE,
    ),
)
register(
    Recheck,
    owner=Owner.CUSTOMER,
    category=CONTACT_DATA,
    purpose=_(
        "taking a contact out of an automation at once when they may no longer be mailed"
        " (they unsubscribed, objected, bounced or were restricted)"
    ),
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=_("until the next pass of the scheduler (a minute), then deleted"),
    personal_fields=["at"],
    erase=Erasure.DELETE,
    account_path="automation__account",
    contact=ContactPart(
        title=_("Automations checking whether they may still write to you"),
        path="contact",
        columns=(Column(_("automation"), "automation__name"), Column(_("since"), "at")),
        position=66,
        erase=ContactErasure.DELETE,
    ),
)
register(
    TriggerEvent,
    owner=Owner.CUSTOMER,
    category=CONTACT_DATA,
    purpose=_("starting automations on events the customer's systems posted, once each"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("90 days, then deleted"),
    personal_fields=["name", "client_id", "received_at"],
    erase=Erasure.DELETE,
    account_path="account",
    contact=ContactPart(
        title=_("Events about you posted to start automations"),
        path="contact",
        columns=(Column(_("event"), "name"), Column(_("received"), "received_at")),
        position=66,
        erase=ContactErasure.DELETE,
    ),
)

# The signing secret is the customer's, shown on the endpoint's page; not in the archive.
declare_free_of_personal_data(
    WebhookEndpoint,
    "the customer's webhook endpoints: their URL and events",
    account_path="account",
    secret_fields=("secret",),
)
register(
    WebhookMessage,
    owner=Owner.CUSTOMER,
    category=CONTACT_DATA,
    purpose=_("telling the customer's own systems of events in their account, as they asked"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("30 days once delivered or failed, then deleted"),
    personal_fields=["payload", "last_error"],
    erase=Erasure.DELETE,
    account_path="endpoint__account",
    contact=ContactPart(
        title=_("Events about you sent to the customer's systems"),
        path="contact",
        columns=(
            Column(_("event"), "event"),
            Column(_("status"), "status"),
            Column(_("created"), "created_at"),
        ),
        position=64,
        erase=ContactErasure.DELETE,
    ),
)


def _old_webhook_messages(now: datetime) -> QuerySet[WebhookMessage]:
    """The delivery log past its period, once a message is done (pending is still work)."""
    return WebhookMessage.objects.filter(
        created_at__lt=now - timedelta(days=WEBHOOK_DAYS),
        status__in=[WebhookMessage.Status.DELIVERED, WebhookMessage.Status.FAILED],
    )


def _old_trigger_events(now: datetime) -> QuerySet[TriggerEvent]:
    """Events past the period in which a client may post the same id again."""
    return TriggerEvent.objects.filter(received_at__lt=now - timedelta(days=EVENT_DAYS))


retention.register(
    "automation events",
    why=lambda: f"events posted to start automations are kept {EVENT_DAYS} days",
    expired=_old_trigger_events,
)

retention.register(
    "webhook messages",
    why=lambda: f"the webhooks' delivery log keeps messages {WEBHOOK_DAYS} days",
    expired=_old_webhook_messages,
)
