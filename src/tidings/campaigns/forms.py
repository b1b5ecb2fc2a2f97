"""Forms of the campaign editor. Choices (layouts, lists, segments) come from the
customer's own account only, so another account's id is simply not a valid choice."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any, cast

from django import forms
from django.core.validators import MaxLengthValidator
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account
from tidings.audience.models import MailingList, Segment
from tidings.campaigns.models import Campaign, Layout
from tidings.campaigns.sandbox import MAX_SOURCE
from tidings.campaigns.services import TEST_RECIPIENTS_MAX
from tidings.core.locales import time_zone_choices


def timezone_choices() -> list[tuple[str, str]]:
    """The zones people may choose (no legacy alias): core.locales, the one list."""
    return time_zone_choices()


def to_utc(day: dt.date, time: dt.time, zone_name: str) -> dt.datetime:
    """The UTC instant of a wall-clock time in a zone; a time the clocks skip is refused,
    and an ambiguous one (clocks going back) is taken at its first occurrence."""
    zone = zoneinfo.ZoneInfo(zone_name)
    local = dt.datetime.combine(day, time).replace(tzinfo=zone, fold=0)
    utc = local.astimezone(dt.UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise forms.ValidationError(
            _(
                "%(time)s does not exist on %(day)s in %(zone)s (the clocks change then); "
                "choose another time."
            )
            % {"time": f"{time:%H:%M}", "day": date_format(day), "zone": zone_name}
        )
    return utc


def _limit(field: forms.Field) -> None:
    cast(forms.CharField, field).max_length = MAX_SOURCE
    field.validators.append(MaxLengthValidator(MAX_SOURCE))


class CampaignForm(forms.ModelForm):
    schedule_date = forms.DateField(
        label=_("Date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    schedule_time = forms.TimeField(
        label=_("Time"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    schedule_timezone = forms.ChoiceField(label=_("Time zone"), choices=timezone_choices)

    class Meta:
        model = Campaign
        fields = [
            "name", "subject", "preheader", "from_name", "from_email", "reply_to",
            "content_format", "body", "design", "layout", "lists", "segments",
            "track_opens", "track_clicks", "archived",
        ]  # fmt: skip
        labels = {
            "name": _("Campaign name (only you see it)"),
            "subject": _("Subject"),
            "body": _("Content"),
            "layout": _("Layout"),
            "lists": _("Lists"),
            "segments": _("Segments"),
            "from_name": _("From name"),
            "from_email": _("From address"),
            "reply_to": _("Reply-to address (optional)"),
            "preheader": _("Preheader (the line inboxes show after the subject)"),
            "content_format": _("Format"),
            "track_opens": _("Count opens (a tracking pixel)"),
            "track_clicks": _("Count clicks (links go through Tidings)"),
            "archived": _("Show it on the public archive page once sent"),
        }
        help_texts = {
            "subject": _('Personalise with {{ contact.first_name | default("there") }}.'),
            "body": _(
                "Use {{ contact.first_name }}, {{ contact.name }}, {{ contact.email }} and "
                '{{ contact.attributes.city | default("your town") }}; a missing value '
                "takes the default."
            ),
            "lists": _("It goes to the subscribed contacts of these lists…"),
            "segments": _("…and to the contacts of these segments; each contact once."),
        }
        widgets = {
            "body": forms.Textarea(attrs={"rows": 18, "class": "code", "spellcheck": "true"}),
            "lists": forms.CheckboxSelectMultiple,
            "segments": forms.CheckboxSelectMultiple,
            # The visual editor's document travels with the form unchanged; the body of a
            # visual campaign is compiled from it by the service.
            "design": forms.HiddenInput,
        }

    def __init__(self, *args: Any, account: Account, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        layout = cast(forms.ModelChoiceField, self.fields["layout"])
        layout.queryset = Layout.objects.filter(account=account)
        layout.empty_label = _("Tidings default layout")
        lists = cast(forms.ModelMultipleChoiceField, self.fields["lists"])
        lists.queryset = MailingList.objects.filter(account=account)
        segments = cast(forms.ModelMultipleChoiceField, self.fields["segments"])
        segments.queryset = Segment.objects.filter(account=account)
        _limit(self.fields["body"])
        campaign = self.instance
        if campaign.pk and campaign.scheduled_at:
            local = timezone.localtime(
                campaign.scheduled_at, zoneinfo.ZoneInfo(campaign.schedule_timezone)
            )
            self.initial.setdefault("schedule_date", local.date())
            self.initial.setdefault("schedule_time", local.time().replace(second=0))
        self.initial.setdefault("schedule_timezone", campaign.schedule_timezone or "UTC")

    def clean_design(self) -> dict[str, Any]:
        design = self.cleaned_data.get("design")
        return design if isinstance(design, dict) else {}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        day, time = data.get("schedule_date"), data.get("schedule_time")
        zone = data.get("schedule_timezone") or "UTC"
        data["scheduled_at"] = None
        if day and time:
            try:
                when = to_utc(day, time, zone)
            except forms.ValidationError as error:
                self.add_error("schedule_time", error)
            else:
                if when <= timezone.now():
                    self.add_error("schedule_date", _("Choose a moment in the future."))
                data["scheduled_at"] = when
        elif day or time:
            self.add_error(
                "schedule_time" if day else "schedule_date", _("Give both date and time.")
            )
        return data

    def service_values(self) -> dict[str, Any]:
        """What the services take: the campaign fields, lists and segments apart."""
        data = self.cleaned_data
        values = {f: data[f] for f in self.Meta.fields if f not in ("lists", "segments")}
        values["scheduled_at"] = data["scheduled_at"]
        values["schedule_timezone"] = data["schedule_timezone"]
        return values


class LayoutForm(forms.ModelForm):
    class Meta:
        model = Layout
        fields = ["name", "html"]
        labels = {"name": _("Name"), "html": _("HTML")}
        help_texts = {
            "html": _(
                "Put {{ content }} where the campaign goes. Available: {{ subject }}, "
                "{{ preheader }}, {{ unsubscribe_url }}, {{ preferences_url }}, "
                "{{ campaign.from_name }}, {{ contact.first_name }}…"
            )
        }
        widgets = {"html": forms.Textarea(attrs={"rows": 24, "class": "code"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _limit(self.fields["html"])


class PreviewContactForm(forms.Form):
    email = forms.CharField(
        label=_("Preview as the contact with address"),
        max_length=320,
        required=False,
        help_text=_("Leave empty to use a made-up contact, Alex Sample."),
    )


class TestSendForm(forms.Form):
    recipients = forms.CharField(
        label=format_lazy(
            _("Send a test to (up to {max} addresses, separated by commas)"),
            max=TEST_RECIPIENTS_MAX,
        ),
        max_length=2000,
    )
