"""The base of every staff console page (P7).

Before a page shows personal data (any model in the data map), the staff member must
have stated why (staff.reason); each page then writes to the audit log what was shown:

- a record's page writes one READ event naming the fields on it;
- a list writes one LIST event per row shown, so that each event carries the account of
  its row and appears in that customer's own audit trail. A page holds at most
  LIST_PAGE_SIZE rows ("show all" only when everything fits on one page), which bounds
  what a single list view writes.

Saving a change goes through the domain's services (subclasses implement save_model),
never a direct model write; Django's LogEntry is not written: the audit log replaces it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from tidings.core.datamap import entry_for
from tidings.staff import audit
from tidings.staff.reason import stated_reason

LIST_PAGE_SIZE = 50


class ServiceRefused(Exception):
    """A service refused a staff change; its message is shown and nothing is saved."""


class AuditedModelAdmin(admin.ModelAdmin):
    actions = None  # no bulk actions: each change goes through a service, one record at a time
    list_per_page = LIST_PAGE_SIZE
    list_max_show_all = LIST_PAGE_SIZE
    change_list_template = "staff/admin/change_list.html"
    change_form_template = "staff/admin/change_form.html"
    # An address typed without a scheme is https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    # -- reads ---------------------------------------------------------------------------

    def holds_personal_data(self) -> bool:
        return entry_for(self.model) is not None

    def audit_account_id(self, obj: Any) -> int | None:
        """The customer account a row belongs to, when the audit cannot find it itself."""
        return None

    def shown_fields(self, request: HttpRequest, obj: Any) -> list[str]:
        return list(flatten_fieldsets(self.get_fieldsets(request, obj)))

    def listed_fields(self, request: HttpRequest) -> list[str]:
        return [name for name in self.get_list_display(request) if isinstance(name, str)]

    def _reason_first(self, request: HttpRequest) -> tuple[str, HttpResponse | None]:
        """The stated reason, or a redirect to the form that asks for it.

        Permission comes first, so a role that may not see a page gets a 403, not a
        question it could never usefully answer.
        """
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        if not self.holds_personal_data():
            return "", None
        reason = stated_reason(request)
        if reason is None:
            url = reverse(f"{self.admin_site.name}:staff_reason")
            return "", redirect(f"{url}?{urlencode({'next': request.get_full_path()})}")
        return reason.text, None

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        reason, ask = self._reason_first(request)
        if ask is not None:
            return ask
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", None) and response.context_data.get("cl")  # type: ignore[attr-defined]
        if changelist is not None and self.holds_personal_data():
            # Evaluating result_list here fills its cache: the template shows these rows.
            self.audit_list(request, list(changelist.result_list), reason=reason)
        return response

    def audit_list(self, request: HttpRequest, rows: list[Any], *, reason: str) -> None:
        """One LIST event per row shown (the audit log's own page overrides this)."""
        if not rows:
            return
        audit.record_many(
            audit.AuditEvent.Action.LIST,
            rows,
            by=request.user,  # type: ignore[arg-type]
            fields=self.listed_fields(request),
            reason=reason,
            account_id_of=self.audit_account_id,
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        reason, ask = self._reason_first(request)
        if ask is not None:
            return ask
        try:
            response = super().change_view(request, object_id, form_url, extra_context)
        except ServiceRefused as refused:
            # The change was rolled back with the admin's transaction: say why, change nothing.
            self.message_user(request, str(refused), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        # A page that shows the record (not the redirect after a save) is a read.
        if isinstance(response, TemplateResponse) and response.status_code == 200:
            obj = (response.context_data or {}).get("original")
            if obj is not None and self.holds_personal_data():
                audit.record(
                    audit.AuditEvent.Action.READ,
                    obj,
                    by=request.user,  # type: ignore[arg-type]
                    fields=self.shown_fields(request, obj),
                    reason=reason,
                    account_id=self.audit_account_id(obj),
                )
        return response

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Django's history reads LogEntry, which Tidings never writes: a record's history
        # is its audit trail, for those allowed to read the audit log.
        if not request.user.has_perm("staff.view_auditevent"):
            raise PermissionDenied
        url = reverse(f"{self.admin_site.name}:staff_auditevent_changelist")
        query = urlencode({"target_type": self.model._meta.label, "target_id": object_id})
        return redirect(f"{url}?{query}")

    # -- writes ---------------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # records are created by the product's own flows (and their services)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # erasure and deletion go through the privacy services, not the console

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        raise PermissionDenied(_("This page has no service to save changes through."))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        raise PermissionDenied

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Many-to-many and inline data would be written directly: the console has none.
        return None

    # Django's admin history (LogEntry) is never written: the audit log replaces it, and
    # the data map declares LogEntry free of personal data on that basis.
    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> None:  # type: ignore[override]
        return None

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> None:  # type: ignore[override]
        return None

    def log_deletion(self, request: HttpRequest, obj: models.Model, object_repr: str) -> None:
        return None

    def log_deletions(self, request: HttpRequest, queryset: Any) -> None:  # type: ignore[override]
        return None


class ReadOnlyAuditedAdmin(AuditedModelAdmin):
    """A console page that only shows records (invoices, erasure proofs, mail, the log).

    Without change permission Django renders every field read-only.
    """

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
