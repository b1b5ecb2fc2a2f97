from django.conf import settings

from tidings.privacy.datamap import Erasure, LegalBasis, Owner, register
from tidings.staff.models import AuditEvent

register(
    AuditEvent,
    owner=Owner.CUSTOMER,
    category="audit trail",
    purpose="accountability: who read or changed personal data, when and why (P7)",
    legal_basis=LegalBasis.LEGITIMATE_INTEREST,
    retention=f"{settings.RETENTION['audit_years']} years (TIDINGS_AUDIT_RETENTION_YEARS)",
    personal_fields=[],
    erase=Erasure.KEEP_WITHOUT_PERSONAL_DATA,
    rows_for_account=lambda account: AuditEvent.objects.filter(account_id=account.pk),
    shown_fields=("at", "actor_kind", "actor_role", "action", "target_type", "fields", "reason"),
    description="Ids and field names only; kept after erasure as proof of what was done.",
)
