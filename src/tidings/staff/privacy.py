from datetime import datetime

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from tidings.core import retention
from tidings.core.datamap import (
    Erasure,
    LegalBasis,
    Owner,
    declare_free_of_personal_data,
    register,
)
from tidings.staff import audit
from tidings.staff.models import AuditEvent, AuditExpiry

register(
    AuditEvent,
    owner=Owner.CUSTOMER,
    category=_("audit trail"),
    purpose=_("accountability: who read or changed personal data, when and why (P7)"),
    legal_basis=LegalBasis.LEGITIMATE_INTEREST,
    retention=format_lazy(
        _(
            "{years} years after each entry is written "
            "(TIDINGS_AUDIT_RETENTION_YEARS), then deleted, oldest first"
        ),
        years=settings.RETENTION["audit_years"],
    ),
    personal_fields=[],
    erase=Erasure.KEEP_WITHOUT_PERSONAL_DATA,
    rows_for_account=lambda account: AuditEvent.objects.filter(account_id=account.pk),
    shown_fields=("at", "actor_kind", "actor_role", "action", "target_type", "fields", "reason"),
    description=_("Ids and field names only; kept after erasure as proof of what was done."),
    contact="ids and field names only: a contact's id stays as a number that points nowhere",
)


def _audit_cutoff(now: datetime) -> datetime:
    return now - relativedelta(years=settings.RETENTION["audit_years"])


retention.register(
    "audit trail",
    why=lambda: (
        f"audit entries are kept {settings.RETENTION['audit_years']} years after they are "
        "written; the record of each deletion keeps the rest verifiable"
    ),
    expired=lambda now: AuditEvent.objects.filter(at__lt=_audit_cutoff(now)),
    remove=lambda now: audit.expire(_audit_cutoff(now)),
)
declare_free_of_personal_data(
    AuditExpiry, "where the audit trail begins after its oldest entries expired"
)
