"""The billing identity, asked only when ordering (P1)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django_countries import countries

from tidings.billing.gateways import BANK_TRANSFER, gateway
from tidings.billing.models import Order


class OrderForm(forms.Form):
    currency = forms.ChoiceField(label=_("Currency"))
    buyer_kind = forms.ChoiceField(
        label=_("Who is buying"), choices=Order.BuyerKind.choices, widget=forms.RadioSelect
    )
    billing_name = forms.CharField(label=_("Name on the invoice"), max_length=200)
    billing_address = forms.CharField(
        label=_("Billing address"), max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )
    # ISO 3166-1 alpha-2, by name in the buyer's language: the invoice and the VAT rule
    # read the code (a VAT number's prefix is compared with it).
    # Named in the language of the request: the list is read at each rendering.
    billing_country = forms.ChoiceField(label=_("Country"), choices=lambda: [("", ""), *countries])
    vat_number = forms.CharField(
        label=_("VAT number (businesses, optional)"), max_length=32, required=False
    )
    method = forms.ChoiceField(label=_("Payment"), widget=forms.RadioSelect)
    save_payment_method = forms.BooleanField(
        label=_(
            "Keep my card at the payment provider for automatic recharges (you turn them "
            "on in Billing; Tidings never sees the card)"
        ),
        required=False,
    )

    def __init__(
        self, *args: object, currencies: list[str], pack: bool = False, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if not pack or not gateway().saves_payment_methods:
            del self.fields["save_payment_method"]
        currency = self.fields["currency"]
        assert isinstance(currency, forms.ChoiceField)
        currency.choices = [(c, c) for c in currencies]
        methods = [(settings.BILLING["gateway"], _("Card, on the payment provider's page"))]
        if settings.BILLING["bank_transfer"]:
            methods.append((BANK_TRANSFER, _("Bank transfer (invoice issued unpaid)")))
        method = self.fields["method"]
        assert isinstance(method, forms.ChoiceField)
        method.choices = methods
        method.initial = methods[0][0]


class RechargeForm(forms.Form):
    """Automatic recharge: which pack, below which balance, charged to which payment
    method kept at the gateway (billing.recharge checks the combination)."""

    payment_order = forms.ChoiceField(label=_("Payment method kept with the order"))
    offer = forms.ChoiceField(label=_("Credit pack to order"))
    threshold = forms.IntegerField(
        label=_("When the credits fall below"), min_value=1, max_value=10_000_000
    )

    def __init__(
        self,
        *args: object,
        orders: list[Order],
        packs: list[tuple[str, str]],
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        payment_order = self.fields["payment_order"]
        assert isinstance(payment_order, forms.ChoiceField)
        payment_order.choices = [
            (str(o.uuid), f"{o.reference} ({o.offer.name}, {o.currency})") for o in orders
        ]
        offer = self.fields["offer"]
        assert isinstance(offer, forms.ChoiceField)
        offer.choices = packs
