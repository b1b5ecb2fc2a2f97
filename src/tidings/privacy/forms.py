"""The customer's request for their "all my data" archive (P20)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from tidings.privacy.models import AccountExport


class AccountExportForm(forms.Form):
    format = forms.ChoiceField(
        label=_("Format"),
        choices=AccountExport.Format.choices,
        initial=AccountExport.Format.XLSX,
        widget=forms.RadioSelect,
    )
