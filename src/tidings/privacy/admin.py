"""The privacy engine's records in the staff console, read-only (P2, P7, P13)."""

from __future__ import annotations

from typing import Any

from tidings.privacy.models import CollectionRecord, ErasureRecord
from tidings.staff.admin_site import site
from tidings.staff.console import ReadOnlyAuditedAdmin


class ErasureRecordAdmin(ReadOnlyAuditedAdmin):
    list_display = (
        "account_ref",
        "closed_at",
        "started_at",
        "finished_at",
        "deadline",
        "requested_by",
    )
    search_fields = ("account_ref__exact",)
    # notice_to (the last addresses, kept only until the notice is queued) is left out:
    # proving the erasure does not need it.
    fields = (
        "account_ref",
        "closed_at",
        "started_at",
        "finished_at",
        "deadline",
        "requested_by",
        "counts",
    )

    def audit_account_id(self, obj: Any) -> int | None:
        return int(obj.account_ref)


class CollectionRecordAdmin(ReadOnlyAuditedAdmin):
    list_display = ("collected_at", "point", "data_collected", "legal_basis", "account")
    list_filter = ("point", "legal_basis")
    fields = (
        "collected_at",
        "point",
        "data_collected",
        "purpose",
        "legal_basis",
        "account",
        "user",
    )


site.register(ErasureRecord, ErasureRecordAdmin)
site.register(CollectionRecord, CollectionRecordAdmin)
