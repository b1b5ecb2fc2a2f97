"""Data map entries and retention rules for cookie consent."""

from datetime import datetime

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db.models import QuerySet
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from tidings.consent.models import ConsentRecord, PageView, PageViewFlush, ThirdParty
from tidings.core import retention
from tidings.core.datamap import (
    Erasure,
    LegalBasis,
    Owner,
    declare_free_of_personal_data,
    register,
)


def consent_years() -> int:
    return int(settings.RETENTION["consent_years"])


register(
    ConsentRecord,
    # A visitor's choice has no owner we can name; a logged-in customer's is linked to
    # their user and shown in My Account.
    owner=Owner.CUSTOMER,
    category=_("cookie choices"),
    purpose=_("proving which cookies each visitor allowed, on which version of the banner"),
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=format_lazy(
        _("{years} years after the choice, as proof"), years=settings.RETENTION["consent_years"]
    ),
    personal_fields=["consent_id", "categories", "given_at", "ip_network", "browser", "method"],
    shown_fields=("given_at", "categories", "method", "banner_version", "consent_id"),
    # The proof outlives the account, detached from it: an anonymous id, a /24 network.
    erase=Erasure.ANONYMISE,
    anonymise_with={"user": None},
    account_path="user__account",
    description=_("Each cookie choice you made while logged in."),
    contact="visitors' cookie choices on Tidings's own pages, not tied to any contact",
    data_subjects=(Owner.VISITOR, Owner.CUSTOMER),
)
declare_free_of_personal_data(
    PageView, "a counter per page and day: no cookie, no IP address, no visitor id (P26)"
)
declare_free_of_personal_data(
    PageViewFlush, "which batches of page views were written: a random name and a time"
)
declare_free_of_personal_data(
    ThirdParty, "companies the operator works with: names, purposes and addresses of services"
)


def _old_choices(now: datetime) -> QuerySet[ConsentRecord]:
    return ConsentRecord.objects.filter(given_at__lt=now - relativedelta(years=consent_years()))


retention.register(
    "cookie choices",
    why=lambda: f"cookie choices are kept {consent_years()} years after they were made, as proof",
    expired=_old_choices,
)
