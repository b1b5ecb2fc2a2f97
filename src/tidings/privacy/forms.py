"""The customer's request for their "all my data" archive (P20)."""

from django import forms

from tidings.privacy.models import AccountExport


class AccountExportForm(forms.Form):
    format = forms.ChoiceField(
        label="Format",
        choices=AccountExport.Format.choices,
        initial=AccountExport.Format.XLSX,
        widget=forms.RadioSelect,
    )
