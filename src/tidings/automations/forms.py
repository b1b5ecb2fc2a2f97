"""The automations' forms (pages): what a customer types, checked before the service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account
from tidings.audience.models import MailingList
from tidings.automations.models import SplitTest, WebhookEndpoint
from tidings.automations.services import MAX_WAIT_DAYS
from tidings.campaigns.models import Campaign
from tidings.core.locales import time_zone_choices

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


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


def _other(label: str, name: StrOrPromise, max_length: int) -> forms.CharField:
    return forms.CharField(
        label=format_lazy(_("{what} of variant {label}"), what=name, label=label),
        max_length=max_length,
        required=False,
    )


def _time(label: str) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=format_lazy(_("Send time of variant {label}"), label=label),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )


class SplitTestForm(forms.Form):
    """One form for every kind of test: the fields of the kind chosen are read, the
    others ignored (the page groups them by kind)."""

    campaign = forms.ModelChoiceField(
        label=_("Campaign (variant A)"), queryset=Campaign.objects.none(), empty_label=None
    )
    kind = forms.ChoiceField(
        label=_("What is tested"),
        choices=SplitTest.Kind.choices,
        initial=SplitTest.Kind.SUBJECT,
        widget=forms.RadioSelect,
    )
    subject_b = _other("B", _("Subject"), 300)
    subject_c = _other("C", _("Subject"), 300)
    subject_d = _other("D", _("Subject"), 300)
    from_name_b = _other("B", _("Sender name"), 200)
    from_name_c = _other("C", _("Sender name"), 200)
    from_name_d = _other("D", _("Sender name"), 200)
    variants = forms.IntegerField(
        label=_("Number of variants"),
        min_value=2,
        max_value=4,
        initial=2,
        required=False,
        help_text=_("Content: B to D start as copies of A; edit each in the campaign editor."),
    )
    send_time_a = _time("A")
    send_time_b = _time("B")
    send_time_c = _time("C")
    send_time_d = _time("D")
    timezone = forms.ChoiceField(label=_("Time zone"), initial="UTC", choices=time_zone_choices)
    test_percent = forms.IntegerField(
        label=_("Test share (%)"),
        min_value=2,
        max_value=50,
        initial=20,
        help_text=_(
            "Split evenly between the variants; the winner goes to the rest. A test of "
            "send time goes to everyone."
        ),
    )
    metric = forms.ChoiceField(
        label=_("Winner by"),
        choices=SplitTest.Metric.choices,
        help_text=_("A test of send time compares opens or clicks; it has no winner."),
    )
    wait_hours = forms.IntegerField(
        label=_("Decide after (hours)"), min_value=1, max_value=24 * 14, initial=4
    )

    def __init__(self, *args: Any, account: Account, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["campaign"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Campaign.objects.filter(
            account=account, status=Campaign.Status.DRAFT, split_variant__isnull=True
        ).order_by("-created_at")
        if self.data.get("kind") == SplitTest.Kind.SEND_TIME:
            # Not asked of a test of send time (everyone, no wait).
            self.fields["test_percent"].required = False
            self.fields["wait_hours"].required = False

    def arguments(self) -> dict[str, Any]:
        """The service's arguments (`splittests.create_test`) from the cleaned form."""
        data = self.cleaned_data
        zone = ZoneInfo(data["timezone"])
        times = [
            timezone.make_aware(data[f"send_time_{x}"].replace(tzinfo=None), zone)
            for x in "abcd"
            if data.get(f"send_time_{x}")
        ]
        return {
            "campaign": data["campaign"],
            "kind": data["kind"],
            "subjects": [data[f"subject_{x}"] for x in "bcd"],
            "from_names": [data[f"from_name_{x}"] for x in "bcd"],
            "variants": data.get("variants"),
            "send_times": times,
            "test_percent": data.get("test_percent") or 20,
            "metric": data["metric"],
            "wait_hours": data.get("wait_hours") or 4,
        }
