"""Billing in the staff console (P7): plans and credit packs edited by billing staff,
orders and invoices read by them (audited), bank transfers marked paid through the
service. Billing staff see billing data only (staff.roles)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tidings.billing import invoices, pdf, services
from tidings.billing.gateways import TestGateway
from tidings.billing.models import (
    GatewayCancellation,
    Invoice,
    Offer,
    Order,
    Price,
    Subscription,
    VatCheck,
    WebhookEvent,
)
from tidings.staff import audit
from tidings.staff.admin_site import site
from tidings.staff.console import AuditedModelAdmin, ReadOnlyAuditedAdmin


class PriceInline(admin.StackedInline):  # each field labelled (a tabular one is not)
    model = Price
    extra = 1


class OfferAdmin(AuditedModelAdmin):
    """What is sold: no personal data, so no reason is asked; each save is audited."""

    list_display = ("name", "kind", "period", "contact_limit", "credits", "vat_treatment", "active")
    list_filter = ("kind", "active")
    inlines = [PriceInline]
    fields = (
        "kind",
        "name",
        "description",
        "period",
        "contact_limit",
        "credits",
        "vat_treatment",
        "vat_rate",
        "active",
        "position",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.add_offer")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.full_clean()
        obj.save()
        audit.record(
            audit.AuditEvent.Action.UPDATE if change else audit.AuditEvent.Action.CREATE,
            obj,
            by=request.user,  # type: ignore[arg-type]
            fields=list(form.changed_data),
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Prices only: what is sold holds no personal data.
        admin.ModelAdmin.save_related(self, request, form, formsets, change)


class OrderAdmin(ReadOnlyAuditedAdmin):
    list_display = (
        "reference",
        "created_at",
        "account",
        "offer",
        "amount",
        "currency",
        "gateway",
        "status",
    )
    list_filter = ("status", "gateway")
    search_fields = ("billing_name",)
    fields = (
        "account",
        "offer",
        "created_at",
        "status",
        "currency",
        "amount",
        "credits",
        "gateway",
        "gateway_ref",
        "paid_at",
        "renewal_of",
        "period_end",
        "buyer_kind",
        "billing_name",
        "billing_address",
        "billing_country",
        "vat_number",
        "reverse_charge",
        "vies_check",
    )
    readonly_fields = ("vies_check",)
    change_form_template = "billing/admin/order_change_form.html"

    @admin.display(description=gettext_lazy("VIES"))
    def vies_check(self, obj: Any) -> str:
        check = VatCheck.objects.filter(order=obj).first()
        if check is None:
            return "—"
        when = check.checked_at or check.requested_at
        parts = [str(check.get_status_display()), f"{when:%Y-%m-%d %H:%M}"]
        if check.consultation:
            parts.append(_("consultation %(n)s") % {"n": check.consultation})
        if check.error:
            parts.append(check.error)
        return " · ".join(parts)

    def audit_account_id(self, obj: Any) -> int | None:
        return int(obj.account_id)

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:pk>/transfer-received/",
                self.admin_site.admin_view(self.transfer_received),
                name="billing_order_transfer_received",
            ),
            path(
                "<int:pk>/test-renewal/",
                self.admin_site.admin_view(self.test_renewal),
                name="billing_order_test_renewal",
            ),
            *super().get_urls(),
        ]

    def test_renewal(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Billing staff make a renewal on the test gateway succeed or fail (POST only):
        the signed event a card gateway would post, through the one receiver."""
        if request.method != "POST" or not request.user.has_perm("billing.change_order"):
            raise PermissionDenied
        order = get_object_or_404(Order, pk=pk, gateway=TestGateway.name)
        try:
            _status, outcome = services.renew_on_test_gateway(
                order, request.POST.get("outcome", "")
            )
        except services.OrderRefused as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            self.message_user(request, outcome, messages.SUCCESS)
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:billing_order_change", args=[pk])
        )

    def transfer_received(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Billing staff record a bank transfer (POST only), through the service."""
        if request.method != "POST" or not request.user.has_perm("billing.change_order"):
            raise PermissionDenied
        order = get_object_or_404(Order, pk=pk)
        try:
            amount = Decimal(request.POST.get("amount", ""))
            outcome = services.mark_transfer_paid(
                order,
                by=request.user,  # type: ignore[arg-type]
                amount=amount,
                currency=request.POST.get("currency", ""),
            )
        except (InvalidOperation, services.OrderRefused) as error:
            message = (
                str(error)
                if isinstance(error, services.OrderRefused)
                else _("Give the amount received.")
            )
            self.message_user(request, message, messages.ERROR)
        else:
            self.message_user(request, outcome, messages.SUCCESS)
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:billing_order_change", args=[pk])
        )


class WebhookEventAdmin(ReadOnlyAuditedAdmin):
    list_display = ("received_at", "gateway", "event_type", "valid", "processed", "outcome")
    list_filter = ("gateway", "valid", "processed")
    fields = (
        "received_at",
        "gateway",
        "remote_ip",
        "event_id",
        "event_type",
        "valid",
        "processed",
        "outcome",
        "account",
        "headers",
        "body",
    )

    def audit_account_id(self, obj: Any) -> int | None:
        return obj.account_id


class InvoiceAdmin(ReadOnlyAuditedAdmin):
    list_display = (
        "number",
        "kind",
        "issued_at",
        "total",
        "currency",
        "billing_name",
        "paid_at",
        "account",
    )
    list_filter = ("kind", "status")
    search_fields = ("number", "billing_name")
    date_hierarchy = "issued_at"
    fields = (
        "kind",
        "status",
        "number",
        "original",
        "issued_at",
        "supplied_at",
        "paid_at",
        "currency",
        "net",
        "vat",
        "total",
        "reverse_charge",
        "seller_name",
        "seller_vat_number",
        "buyer_kind",
        "billing_name",
        "billing_address",
        "billing_country",
        "vat_number",
        "account",
        "order",
        "keep_until",
    )
    change_form_template = "billing/admin/invoice_change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # invoices come from orders; corrections are credit notes

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:pk>/pdf/",
                self.admin_site.admin_view(self.pdf_view),
                name="billing_invoice_pdf",
            ),
            path(
                "<int:pk>/credit-note/",
                self.admin_site.admin_view(self.credit_note_view),
                name="billing_invoice_credit_note",
            ),
            *super().get_urls(),
        ]

    def pdf_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The invoice's PDF for billing staff; each download is audited (P7)."""
        reason, ask = self._reason_first(request)
        if ask is not None:
            return ask
        found = get_object_or_404(Invoice, pk=pk)
        audit.record(
            audit.AuditEvent.Action.EXPORT,
            found,
            by=request.user,  # type: ignore[arg-type]
            fields=["pdf"],
            reason=reason,
            account_id=found.account_id,
        )
        response = HttpResponse(pdf.render(found), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{pdf.file_name(found)}"'
        return response

    def credit_note_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Billing staff credit an issued invoice, all of it or an amount (a refund made
        outside the gateway, a correction): a credit note naming it (POST only)."""
        if request.method != "POST" or not request.user.has_perm("billing.add_invoice"):
            raise PermissionDenied
        original = get_object_or_404(Invoice, pk=pk)
        raw = request.POST.get("amount", "").strip().replace(",", ".")
        try:
            amount = Decimal(raw) if raw else None
            if amount is not None and not amount.is_finite():
                raise InvalidOperation
            note = invoices.credit_note(
                original,
                amount=amount,
                by=request.user,  # type: ignore[arg-type]
            )
        except InvalidOperation:
            self.message_user(request, _("Give the amount to credit."), messages.ERROR)
        except invoices.InvoiceRefused as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            self.message_user(
                request,
                _("Credit note %(n)s issued.") % {"n": note.number},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(
                reverse(f"{self.admin_site.name}:billing_invoice_change", args=[note.pk])
            )
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:billing_invoice_change", args=[pk])
        )


class SubscriptionAdmin(ReadOnlyAuditedAdmin):
    """Plans: when each renews, and where a failed renewal's dunning stands."""

    list_display = (
        "account",
        "offer",
        "status",
        "current_period_end",
        "dunning_step",
        "payment_failed_at",
        "sending_suspended_at",
    )
    list_filter = ("status", "dunning_step")
    fields = (
        "account",
        "offer",
        "order",
        "status",
        "current_period_end",
        "gateway_ref",
        "payment_failed_at",
        "dunning_step",
        "sending_suspended_at",
        "cancelled_at_gateway",
    )
    readonly_fields = ("cancelled_at_gateway",)

    @admin.display(description=gettext_lazy("cancelled at the payment gateway"))
    def cancelled_at_gateway(self, obj: Any) -> str:
        """A closed account's plan at Stripe: done, or the tries so far and why not."""
        asked = GatewayCancellation.objects.filter(subscription=obj).first()
        if asked is None:
            return "—"
        if asked.done_at is not None:
            return f"{asked.done_at:%Y-%m-%d %H:%M} ({asked.outcome})"
        return _("not yet: %(n)d tries, next %(at)s, last error: %(error)s") % {
            "n": asked.attempts,
            "at": f"{asked.due_at:%Y-%m-%d %H:%M}" if asked.due_at else "—",
            "error": asked.error or "—",
        }

    def audit_account_id(self, obj: Any) -> int | None:
        return int(obj.account_id)


site.register(Offer, OfferAdmin)
site.register(Order, OrderAdmin)
site.register(WebhookEvent, WebhookEventAdmin)
site.register(Invoice, InvoiceAdmin)
site.register(Subscription, SubscriptionAdmin)
