"""Forms of the audience pages. They check the shape of the input; the services check
the rest and do the writing."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account
from tidings.audience import attribute_types
from tidings.audience.models import Contact, MailingList
from tidings.audience.segments import FIELDS, OPS


class ListForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Shown on subscription forms under the list's name."),
    )
    visibility = forms.ChoiceField(
        label=_("Visibility"), choices=MailingList.Visibility.choices, widget=forms.RadioSelect
    )
    optin = forms.ChoiceField(
        label=_("Opt-in"), choices=MailingList.OptIn.choices, widget=forms.RadioSelect
    )


class NewContactForm(forms.Form):
    email = forms.CharField(label=_("Email"), max_length=320, widget=forms.EmailInput)
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    lists = forms.ModelMultipleChoiceField(
        label=_("Lists"),
        queryset=MailingList.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    legal_basis = forms.ChoiceField(
        label=_("Legal basis"),
        choices=Contact.LegalBasis.choices,
        help_text=_("Why you may mail this person: they consented, or they are a customer."),
    )
    basis_at = forms.DateField(
        label=_("Date of the consent or contract"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Leave empty for today."),
    )
    note = forms.CharField(
        label=_("How the consent was given"),
        required=False,
        max_length=500,
        help_text=_("Kept as proof, e.g. “signed up at our stand, paper form 2025-03”."),
    )

    def __init__(self, account: Account, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lists"].queryset = MailingList.objects.filter(account=account)  # type: ignore[attr-defined]

    def clean_basis_at(self) -> date | None:
        value = self.cleaned_data.get("basis_at")
        if value and value > date.today():
            raise forms.ValidationError(_("The date cannot be in the future."))
        return value


ATTRIBUTE_TYPES = (
    ("text", _("text")),
    ("number", _("number")),
    ("boolean", _("yes/no")),
    ("date", _("date")),
)


def type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str) and len(value) == 10:
        try:
            date.fromisoformat(value)
        except ValueError:
            return "text"
        return "date"
    return "text"


def display_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def typed_value(kind: str, text: str) -> Any:
    """The JSON value of an attribute typed in the page (audience.attribute_types, the
    one rule for typed values). Raises ValueError with a message for the person."""
    text = text.strip()
    if kind == "boolean" and text.lower() in ("", "on", "off"):
        return text.lower() == "on"
    if kind not in attribute_types.KINDS:
        raise ValueError(f"“{kind[:20]}” is not an attribute type.")
    return attribute_types.convert(kind, text)


def attribute_rows(
    attributes: dict[str, Any], blank: int = 3, declared: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """The contact page's rows: a declared attribute shows its declared type."""
    declared = declared or {}
    rows = [
        {"key": k, "type": declared.get(k) or type_of(v), "value": display_value(v)}
        for k, v in sorted(attributes.items())
    ]
    return rows + [{"key": "", "type": "text", "value": ""} for _ in range(blank)]


def attributes_from_post(data: QueryDict) -> tuple[dict[str, Any], list[str], list[dict[str, str]]]:
    """The attributes of the contact page's rows (attr_key, attr_type, attr_value), the
    errors, and the rows as typed (to show them again)."""
    keys = data.getlist("attr_key")
    kinds = data.getlist("attr_type")
    values = data.getlist("attr_value")
    attributes: dict[str, Any] = {}
    errors: list[str] = []
    rows = []
    for key, kind, text in zip(keys, kinds, values, strict=False):
        rows.append({"key": key, "type": kind, "value": text})
        key = key.strip()
        if not key:
            continue
        if key in attributes:
            errors.append(f"The attribute “{key[:40]}” is there twice.")
            continue
        try:
            attributes[key] = typed_value(kind, text)
        except ValueError as error:
            errors.append(f"{key[:40]}: {error}")
    return attributes, errors, rows


def tags_from_text(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


class SubscriptionFormForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=200, help_text=_("For you; people see the lists' names.")
    )
    lists = forms.ModelMultipleChoiceField(
        label=_("Lists"),
        queryset=MailingList.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Only public lists can be offered on a form."),
    )
    consent_text = forms.CharField(
        label=_("Consent text"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "What people agree to when they subscribe. Kept, word for word and with "
            "its version, with each subscription."
        ),
    )
    thank_you_url = forms.URLField(
        label=_("Thank-you page (optional)"),
        required=False,
        assume_scheme="https",
        help_text=_("Where people go after subscribing; empty for our own thank-you page."),
    )

    def __init__(self, account: Account, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lists"].queryset = MailingList.objects.filter(  # type: ignore[attr-defined]
            account=account, visibility=MailingList.Visibility.PUBLIC
        )


class SettingsForm(forms.Form):
    editable_attributes = forms.CharField(
        label=_("Attributes contacts may change"),
        required=False,
        max_length=2000,
        help_text=_(
            "Attribute names, separated by commas. Contacts can always change their "
            "name, leave lists, and refuse tracking on their preference page."
        ),
    )
    contact_sender = forms.CharField(
        label=_("Sender of your mail to contacts"),
        required=False,
        max_length=320,
        help_text=_(
            "The confirmation of a subscription and your answers to contacts' requests "
            "come from this address, through your relay, signed with your DKIM key for its "
            "domain. Empty: your organisation's name, sent via us from our address."
        ),
    )


class SubscribeForm(forms.Form):
    """The public form. `website` is the honeypot: people never see it, bots fill it."""

    email = forms.CharField(
        label=_("Email"), max_length=320, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    consent = forms.BooleanField(
        label=_("Consent"),
        error_messages={"required": _("Tick the box to agree, or we cannot subscribe you.")},
    )
    website = forms.CharField(required=False)


# --- segment rules from the builder's rows ------------------------------------------

FIELD_CHOICES = [(name, f.label) for name, f in FIELDS.items()]
OP_LABELS = {
    "eq": _("is"),
    "neq": _("is not"),
    "contains": _("contains"),
    "gt": _("greater than"),
    "lt": _("less than"),
    "before": _("before"),
    "after": _("after"),
    "exists": _("is set"),
    "in": _("is one of"),
}
OP_CHOICES = [(op, OP_LABELS[op]) for op in OPS]


def rules_from_post(data: QueryDict) -> dict[str, Any]:
    """Rules from the builder's rows (c_field, c_key, c_op, c_value); rows without a
    field are ignored. The values are text; segments.validate_rules types them."""
    conditions: list[dict[str, Any]] = []
    for field, key, op, value in zip(
        data.getlist("c_field"),
        data.getlist("c_key"),
        data.getlist("c_op"),
        data.getlist("c_value"),
        strict=False,
    ):
        if not field:
            continue
        condition: dict[str, Any] = {"field": field, "op": op}
        if key.strip():
            condition["key"] = key.strip()
        if op == "exists":
            condition["value"] = value.strip().lower() not in ("no", "false", "0")
        elif op == "in":
            condition["value"] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            condition["value"] = value
        conditions.append(condition)
    return {"match": data.get("match", "all"), "conditions": conditions}


def rule_rows(rules: dict[str, Any], blank: int = 2) -> list[dict[str, str]]:
    rows = []
    for c in rules.get("conditions", []):
        value = c.get("value", "")
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        rows.append(
            {
                "field": c.get("field", ""),
                "key": c.get("key", ""),
                "op": c.get("op", ""),
                "value": str(value),
            }
        )
    return rows + [{"field": "", "key": "", "op": "eq", "value": ""} for _ in range(blank)]
