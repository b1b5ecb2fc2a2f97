"""Data map entries of automations: who is in which automation, and which step ran for
whom (P20: in the "all my data" archive; the contact's view and erasure read them)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from tidings.automations.models import Automation, Enrolment, Step, StepRun
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

declare_free_of_personal_data(
    Automation, "the customer's automations: name, trigger, status", account_path="account"
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
    personal_fields=["status", "position", "due_at", "entered_at", "left_at"],
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
    personal_fields=["ran_at"],
    erase=Erasure.DELETE,
    account_path="step__automation__account",
    contact=ContactPart(
        title=_("Automation steps done for you"),
        path="contact",
        columns=(
            Column(_("automation"), "step__automation__name"),
            Column(_("step"), "step__position"),
            Column(_("done"), "ran_at"),
        ),
        position=63,
        erase=ContactErasure.DELETE,
    ),
)
