"""The automations' forms (pages): what a customer types, checked before the service."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account
from tidings.audience.models import MailingList
from tidings.automations.models import SplitTest, WebhookEndpoint
from tidings.automations.services import MAX_WAIT_DAYS
from tidings.campaigns.models import Campaign


class AutomationForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    mailing_list = forms.ModelChoiceField(
        label=_("Contacts enter when they subscribe to"),
        queryset=MailingList.objects.none(),
        empty_label=None,
    )

    def __init__(self, *args: Any, account: Account, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["mailing_list"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = MailingList.objects.filter(account=account).order_by("name")


class StepForm(forms.Form):
    wait_days = forms.IntegerField(
        label=_("Wait (days)"),
        min_value=0,
        max_value=MAX_WAIT_DAYS,
        initial=1,
        help_text=_("After entering, or after the step before; 0 sends at once."),
    )
    subject = forms.CharField(label=_("Subject"), max_length=300)
    from_name = forms.CharField(label=_("From name"), max_length=200, required=False)
    from_email = forms.EmailField(label=_("From address"))
    body = forms.CharField(
        label=_("Message"),
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("Markdown; edit it further in the campaign editor before starting."),
    )


class EndpointForm(forms.Form):
    url = forms.CharField(
        label=_("Endpoint URL"),
        max_length=500,
        help_text=_("https only; Tidings signs each message (Standard Webhooks)."),
    )
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=WebhookEndpoint.Event.choices,
        widget=forms.CheckboxSelectMultiple,
    )


class SplitTestForm(forms.Form):
    campaign = forms.ModelChoiceField(
        label=_("Campaign (variant A)"), queryset=Campaign.objects.none(), empty_label=None
    )
    subjects = forms.CharField(
        label=_("Other subjects"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One to three, one per line: variants B, C and D."),
    )
    test_percent = forms.IntegerField(
        label=_("Test share (%)"),
        min_value=2,
        max_value=50,
        initial=20,
        help_text=_("Split evenly between the variants; the winner goes to the rest."),
    )
    metric = forms.ChoiceField(label=_("Winner by"), choices=SplitTest.Metric.choices)
    wait_hours = forms.IntegerField(
        label=_("Decide after (hours)"), min_value=1, max_value=24 * 14, initial=4
    )

    def __init__(self, *args: Any, account: Account, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["campaign"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Campaign.objects.filter(
            account=account, status=Campaign.Status.DRAFT, split_test__isnull=True
        ).order_by("-created_at")

    def clean_subjects(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["subjects"].splitlines() if line.strip()]
