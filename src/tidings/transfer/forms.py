"""Forms of the import steps and of the export page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.audience import attribute_types
from tidings.audience.models import Contact, MailingList, Segment
from tidings.transfer import mapping
from tidings.transfer.models import ExportJob, ImportJob


class MappingForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("Contacts already in your audience"),
        choices=ImportJob.Mode.choices,
        widget=forms.RadioSelect,
    )
    lists = forms.ModelMultipleChoiceField(
        label=_("Subscribe the imported contacts to"),
        queryset=MailingList.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, job: ImportJob, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.job = job
        self.fields["lists"].queryset = MailingList.objects.filter(account_id=job.account_id)  # type: ignore[attr-defined]
        self.initial.setdefault("mode", job.mode)
        self.initial.setdefault("lists", job.list_ids)
        for i, (column, target) in enumerate(zip(job.columns, job.mapping, strict=True)):
            is_attribute = target.startswith(mapping.ATTRIBUTE_PREFIX)
            self.fields[f"target_{i}"] = forms.ChoiceField(
                label=_("Column “%(column)s”") % {"column": column}, choices=mapping.CHOICES
            )
            self.fields[f"key_{i}"] = forms.CharField(
                label=_("Attribute name for “%(column)s”") % {"column": column},
                required=False,
                max_length=63,
            )
            self.fields[f"type_{i}"] = forms.ChoiceField(
                label=_("Type of the attribute “%(column)s”") % {"column": column},
                choices=attribute_types.KIND_CHOICES,
                required=False,
            )
            self.initial.setdefault(
                f"type_{i}", job.types[i] if i < len(job.types) and job.types[i] else "text"
            )
            self.initial.setdefault(f"target_{i}", "attribute" if is_attribute else target)
            self.initial.setdefault(
                f"key_{i}",
                target[len(mapping.ATTRIBUTE_PREFIX) :]
                if is_attribute
                else mapping.attribute_key(column),
            )

    def rows(self, preview: list[list[str]]) -> list[dict[str, Any]]:
        """One row per column for the template: header, sample values, the two fields."""
        return [
            {
                "column": column,
                "samples": [r[i] for r in preview if i < len(r) and str(r[i]).strip()][:3],
                "target": self[f"target_{i}"],
                "key": self[f"key_{i}"],
                "type": self[f"type_{i}"],
            }
            for i, column in enumerate(self.job.columns)
        ]

    def types(self) -> list[str]:
        """The type chosen for each column (used where it is imported as an attribute)."""
        return [self.cleaned_data.get(f"type_{i}") or "text" for i in range(len(self.job.columns))]

    def targets(self) -> list[str]:
        result = []
        for i in range(len(self.job.columns)):
            target = self.cleaned_data[f"target_{i}"]
            if target == "attribute":
                key = (self.cleaned_data.get(f"key_{i}") or "").strip().lower()
                target = mapping.ATTRIBUTE_PREFIX + key
            result.append(target)
        return result


class BasisForm(forms.Form):
    legal_basis = forms.ChoiceField(
        label=_("On which legal basis may you mail these people?"),
        choices=ImportJob.Basis.choices,
        widget=forms.RadioSelect,
    )
    basis_date = forms.DateField(
        label=_("Date the consent was collected (or the contract made)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Required for consent. Use the date of the oldest consent if they differ."),
    )
    statement = forms.CharField(
        label=_("How and where did they give it?"),
        max_length=400,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "For example: “ticked the newsletter box at checkout in our shop, 2021 to 2024”."
        ),
    )
    confirm = forms.BooleanField(
        label=_(
            "I confirm that every person in this file gave this consent (or has this contract) "
            "and that I can prove it if asked."
        )
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        when = data.get("basis_date")
        if data.get("legal_basis") == ImportJob.Basis.CONSENT and not when:
            self.add_error("basis_date", _("Give the date on which the consent was collected."))
        if when and when > timezone.localdate():
            self.add_error("basis_date", _("The date cannot be in the future."))
        return data


class ExportForm(forms.Form):
    scope = forms.ChoiceField(
        label=_("What to export"),
        choices=ExportJob.Scope.choices,
        widget=forms.RadioSelect,
        initial=ExportJob.Scope.ALL,
    )
    mailing_list = forms.ModelChoiceField(
        label=_("List"), queryset=MailingList.objects.none(), required=False
    )
    segment = forms.ModelChoiceField(
        label=_("Segment"), queryset=Segment.objects.none(), required=False
    )
    q = forms.CharField(label=_("Email or name contains"), required=False, max_length=200)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("any")), *Contact.Status.choices]
    )
    format = forms.ChoiceField(
        label=_("Format"),
        choices=ExportJob.Format.choices,
        widget=forms.RadioSelect,
        initial=ExportJob.Format.CSV,
    )

    def __init__(self, *args: Any, account_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["mailing_list"].queryset = MailingList.objects.filter(account_id=account_id)  # type: ignore[attr-defined]
        self.fields["segment"].queryset = Segment.objects.filter(account_id=account_id)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scope") == ExportJob.Scope.LIST and not data.get("mailing_list"):
            self.add_error("mailing_list", _("Choose the list to export."))
        if data.get("scope") == ExportJob.Scope.SEGMENT and not data.get("segment"):
            self.add_error("segment", _("Choose the segment to export."))
        return data
