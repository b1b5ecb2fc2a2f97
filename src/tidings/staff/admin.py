"""The audit log in the staff console: read-only for everyone, superusers included (P7)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext as _

from tidings.staff import audit
from tidings.staff.admin_site import site
from tidings.staff.console import ReadOnlyAuditedAdmin
from tidings.staff.models import AuditEvent


class NamedEmptyValues(admin.AllValuesFieldListFilter):
    """Django's filter by each value, the empty one named: its link would otherwise have
    no text at all (axe: link-name)."""

    def choices(self, changelist: Any) -> Any:
        for choice in super().choices(changelist):
            if choice.get("display") == "":
                choice = {**choice, "display": _("(none)")}
            yield choice


class AuditEventAdmin(ReadOnlyAuditedAdmin):
    list_display = (
        "id",
        "at",
        "actor_kind",
        "actor_role",
        "actor_id",
        "action",
        "target_type",
        "target_id",
        "account_id",
        "reason",
    )
    list_filter = (
        "action",
        ("actor_kind", NamedEmptyValues),
        ("actor_role", NamedEmptyValues),
        ("target_type", NamedEmptyValues),
    )
    search_fields = ("reason", "target_id")
    date_hierarchy = "at"
    ordering = ("-pk",)
    fields = (*list_display[1:], "fields", "prev_hash", "hash")

    # Nobody changes the log, whatever their permissions say: has_perm is True for
    # every permission of a superuser, so these answers do not ask it.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def audit_list(self, request: HttpRequest, rows: list[Any], *, reason: str) -> None:
        # One event per page read, not per row: an event per row shown would grow the log
        # each time someone reads it. It names the ids shown and, when the reader filtered
        # on one customer, that customer's account (so it appears in their trail).
        if not rows:
            return
        ids = sorted(row.pk for row in rows)
        account = request.GET.get("account_id", "")
        audit.record(
            audit.AuditEvent.Action.LIST,
            by=request.user,  # type: ignore[arg-type]
            target_type=AuditEvent._meta.label,
            target_id=f"{ids[0]}..{ids[-1]}",
            account_id=int(account) if account.isdigit() else None,
            fields=self.listed_fields(request),
            reason=reason,
        )


site.register(AuditEvent, AuditEventAdmin)
