"""Third parties and cookie-choice proofs in the staff console (P22, P24, P27)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from tidings.consent.models import ConsentRecord, ThirdParty
from tidings.consent.services import announce_third_party, set_third_party_active
from tidings.staff.admin_site import site
from tidings.staff.console import AuditedModelAdmin, ReadOnlyAuditedAdmin

ANNOUNCED_FIELDS = (
    "name",
    "category",
    "purpose",
    "data_received",
    "policy_url",
    "opt_out_url",
    "script_src",
)


class ThirdPartyAdmin(AuditedModelAdmin):
    """Adding a third party announces it; it takes effect after the notice period. What
    was announced cannot be edited afterwards (that would be a new, unannounced party):
    only switching it off is a change."""

    list_display = ("name", "category", "host", "added_at", "effective_at", "active")
    list_filter = ("category", "active")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("consent.add_thirdparty")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ANNOUNCED_FIELDS
        return (*ANNOUNCED_FIELDS, "host", "added_at", "effective_at", "announced_at", "active")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return (*ANNOUNCED_FIELDS, "host", "added_at", "effective_at", "announced_at")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            set_third_party_active(obj, active=obj.active)
            return
        party = announce_third_party(**{f: form.cleaned_data[f] for f in ANNOUNCED_FIELDS})
        obj.pk = party.pk


class ConsentRecordAdmin(ReadOnlyAuditedAdmin):
    list_display = ("given_at", "consent_id", "categories", "method", "banner_version")
    list_filter = ("method",)
    fields = (
        "given_at",
        "consent_id",
        "categories",
        "method",
        "banner_version",
        "ip_network",
        "browser",
        "user",
    )

    def audit_account_id(self, obj: Any) -> int | None:
        return obj.user.account_id if obj.user_id else None


site.register(ThirdParty, ThirdPartyAdmin)
site.register(ConsentRecord, ConsentRecordAdmin)
