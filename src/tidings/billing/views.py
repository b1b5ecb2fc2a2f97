"""Pricing, ordering, My Account → Billing, the test gateway's hosted page and the
gateways' webhooks. Thin: services write."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from tidings.accounts.decorators import account_of, customer_required
from tidings.accounts.models import Account
from tidings.billing import credits, dunning, pdf, recharge, selectors, services
from tidings.billing.forms import OrderForm, RechargeForm
from tidings.billing.gateways import BANK_TRANSFER, GATEWAYS, gateway
from tidings.billing.models import Offer, Order, VatCheck
from tidings.core import baseurl, clientip, headers


def pricing(request: HttpRequest) -> HttpResponse:
    """The public pricing page: plans and credit packs, with their prices."""
    offers = list(selectors.offers_for_sale())
    return render(
        request,
        "billing/pricing.html",
        {
            "plans": [o for o in offers if o.kind == Offer.Kind.PLAN],
            "packs": [o for o in offers if o.kind == Offer.Kind.PACK],
            "free_credits": settings.BILLING["free_credits"],
        },
    )


@customer_required
def billing(request: HttpRequest) -> HttpResponse:
    """My Account → Billing: orders and their state, the credits and the plan."""
    account = account_of(request)
    plan = credits.active_plan(account)
    if plan is not None and plan.order.gateway in GATEWAYS:
        # Its "Pay" button leads to the gateway's page of the renewal's invoice.
        _allow_hosted_page(request, plan.order.gateway)
    return render(
        request,
        "billing/billing.html",
        {
            "balance": credits.balance_of(account),
            "plan": plan,
            "renewal": selectors.pending_renewal(plan),
            "dunning": dunning.state_of(plan),
            "orders": selectors.orders_of(account)[:50],
            "ledger": selectors.ledger_of(account),
            "invoices": selectors.invoices_of(account)[:100],
            **_recharge_context(account),
        },
    )


def _recharge_context(account: Account) -> dict[str, object]:
    """Billing's automatic recharge: its setting, what one recharge costs, and the form
    to set it up (with a payment method kept at the gateway)."""
    setting = recharge.setting_of(account)
    orders = recharge.payment_orders(account)
    form = None
    if orders:
        initial = {}
        if setting is not None:
            initial = {
                "payment_order": str(setting.payment_order.uuid),
                "offer": str(setting.offer_id),
                "threshold": setting.threshold,
            }
        form = RechargeForm(initial=initial, orders=orders, packs=_packs(orders))
    return {
        "recharge": setting,
        "recharge_amount": recharge.amount_of(setting) if setting is not None else None,
        "recharge_form": form,
    }


def _packs(orders: list[Order]) -> list[tuple[str, str]]:
    """The packs on offer in the currency of any of the account's payment methods."""
    return list(
        {str(o.pk): o.name for order in orders for o, _p in recharge.packs_for(order)}.items()
    )


@customer_required
@require_POST
def recharge_settings(request: HttpRequest) -> HttpResponse:
    """Automatic recharge: choose (then read and agree to the exact words of the
    charges: they are kept as shown), or turn it off."""
    account = account_of(request)
    user = request.user
    if request.POST.get("turn_off"):
        if recharge.turn_off(account, by=user, reason="turned off by the customer"):  # type: ignore[arg-type]
            messages.info(request, _("Automatic recharge is off: nothing will be charged."))
        return redirect("billing:billing")
    orders = recharge.payment_orders(account)
    form = RechargeForm(request.POST, orders=orders, packs=_packs(orders))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("billing:billing")
    chosen = {
        "payment_order": form.cleaned_data["payment_order"],
        "offer_id": form.cleaned_data["offer"],
        "threshold": form.cleaned_data["threshold"],
    }
    try:
        if request.POST.get("agreed") != "yes":
            choice = recharge.check(account, **chosen)
            return render(
                request,
                "billing/recharge_consent.html",
                {"choice": choice, "form": form},
            )
        recharge.turn_on(account, by=user, agreed=True, **chosen)  # type: ignore[arg-type]
    except recharge.RechargeRefused as refused:
        messages.error(request, str(refused))
        return redirect("billing:billing")
    messages.success(request, _("Automatic recharge is on."))
    return redirect("billing:billing")


@customer_required
def invoice_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """An invoice or credit note of the account, as PDF; anyone else's is a 404."""
    found = get_object_or_404(selectors.invoices_of(account_of(request)), pk=pk)
    response = HttpResponse(pdf.render(found), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{pdf.file_name(found)}"'
    return response


@customer_required
def order(request: HttpRequest, offer_id: int) -> HttpResponse:
    """Choose → billing identity → the gateway's hosted page."""
    account = account_of(request)
    offer = get_object_or_404(selectors.offers_for_sale(), pk=offer_id)
    currencies = [p.currency for p in offer.prices.all()]
    _allow_hosted_page(request)
    form = OrderForm(
        request.POST or None, currencies=currencies, pack=offer.kind == Offer.Kind.PACK
    )
    if request.method == "POST" and form.is_valid():
        try:
            placed = services.place_order(
                account_id=account.pk,
                offer_id=offer.pk,
                by=request.user,  # type: ignore[arg-type]
                **form.cleaned_data,
            )
            if placed.gateway == BANK_TRANSFER:
                messages.info(
                    request,
                    _("Order %(ref)s placed: pay by bank transfer; it is fulfilled when received.")
                    % {"ref": placed.reference},
                )
                return redirect("billing:billing")
            if VatCheck.objects.filter(order=placed, status=VatCheck.Status.PENDING).exists():
                # Said before paying: VIES did not answer, so VAT is charged.
                messages.warning(
                    request,
                    _(
                        "VIES, the EU's register of VAT numbers, did not answer: your VAT "
                        "number could not be confirmed, so this order includes VAT. Pay it "
                        "as it is, or order again later."
                    ),
                )
                return redirect("billing:returned", uuid=placed.uuid)
            url = _checkout(placed)
        except services.OrderRefused as error:
            form.add_error(None, str(error))
        else:
            return HttpResponseRedirect(url)
    return render(request, "billing/order.html", {"offer": offer, "form": form})


def _allow_hosted_page(request: HttpRequest, name: str | None = None) -> None:
    headers.allow(request, "form-action", gateway(name).checkout_origins())


def _checkout(placed: Order) -> str:
    back = baseurl.base_url() + reverse("billing:returned", kwargs={"uuid": placed.uuid})
    return services.start_checkout(placed, success_url=back, cancel_url=back)


@customer_required
@require_POST
def pay(request: HttpRequest, uuid: str) -> HttpResponse:
    """Pay an order not paid yet (the gateway was down, the tab was closed): the same
    session again, by the order's idempotency key. A renewal is paid on the gateway's
    page of its invoice (a failed one: the amount due)."""
    found = get_object_or_404(Order, uuid=uuid, account=account_of(request))
    if found.renewal_of_id is not None:
        url = ""
        if found.status in (Order.Status.CREATED, Order.Status.FAILED):
            url = gateway(found.gateway).renewal_payment_url(found)
        if not url:
            messages.error(request, _("This renewal cannot be paid here now."))
            return redirect("billing:returned", uuid=found.uuid)
        return HttpResponseRedirect(url)
    try:
        return HttpResponseRedirect(_checkout(found))
    except services.OrderRefused as error:
        messages.error(request, str(error))
        return redirect("billing:returned", uuid=found.uuid)


@customer_required
def returned(request: HttpRequest, uuid: str) -> HttpResponse:
    """Back from the hosted page: shows the order as the webhooks left it; coming here
    fulfils nothing."""
    found = get_object_or_404(Order, uuid=uuid, account=account_of(request))
    if found.gateway in GATEWAYS:
        _allow_hosted_page(request, found.gateway)
    return render(request, "billing/returned.html", {"order": found})


def test_gateway(request: HttpRequest, session: str) -> HttpResponse:
    """The test gateway's hosted page: no card is asked, no money moves. Served only
    while the test gateway is the configured one."""
    if settings.BILLING["gateway"] != "test":
        raise Http404("The test gateway is not in use")
    found = services.test_gateway_order(session)
    if found is None or not services.test_gateway_page_open(found):
        if found is not None:
            return redirect("billing:returned", uuid=found.uuid)
        raise Http404("No such payment session")
    if request.method == "POST":
        try:
            services.pay_on_test_gateway(session, request.POST.get("outcome", ""))
        except services.OrderRefused as error:
            messages.error(request, str(error))
        return redirect("billing:returned", uuid=found.uuid)
    return render(request, "billing/test_gateway.html", {"order": found, "session": session})


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, gateway: str) -> HttpResponse:
    """A gateway's event: stored first, verified, applied once (services)."""
    if gateway not in GATEWAYS:
        raise Http404("No such gateway")
    status, outcome = services.receive_webhook(
        gateway, request.body, dict(request.headers), remote_ip=clientip.client_ip(request)
    )
    return HttpResponse(outcome, status=status, content_type="text/plain")
