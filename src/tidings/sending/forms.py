from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils.translation import gettext_lazy as _

from tidings.core.locales import time_zone_choices
from tidings.sending.models import Relay, SendingSettings
from tidings.sending.services import SettingsError, check_relay_host


class ScheduleForm(forms.Form):
    when = forms.DateTimeField(
        label=_("Send at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    timezone = forms.ChoiceField(label=_("Time zone"), initial="UTC", choices=time_zone_choices)

    def clean_timezone(self) -> Any:
        return ZoneInfo(self.cleaned_data["timezone"])


class RelayForm(forms.ModelForm):
    password = forms.CharField(
        label=_("Password"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Stored encrypted; never shown again. Leave empty to keep the current one."),
    )

    class Meta:
        model = Relay
        fields = [
            "name", "host", "port", "security", "username", "password", "esp",
            "max_connections", "rate_per_second", "rate_per_hour", "active",
        ]  # fmt: skip
        labels = {
            "name": _("Name"),
            "host": _("Host"),
            "port": _("Port"),
            "security": _("Security"),
            "username": _("Username"),
            "esp": _("Kind of server"),
            "max_connections": _("Connections at most"),
            "rate_per_second": _("Messages per second at most"),
            "rate_per_hour": _("Messages per hour at most"),
            "active": _("Active"),
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        host, port = cleaned.get("host"), cleaned.get("port")
        if host and port:
            try:
                check_relay_host(host, port)
            except SettingsError as error:
                self.add_error("host", str(error))
        return cleaned


class PostalAddressForm(forms.Form):
    postal_address = forms.CharField(
        label=_("Postal address shown in every campaign"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
        help_text=_("Street and number or post office box, postcode, place, country."),
    )


class DomainForm(forms.Form):
    domain = forms.CharField(
        label=_("Domain"), max_length=253, help_text=_("e.g. news.example.com")
    )
    selector = forms.CharField(label=_("DKIM selector"), max_length=63, initial="tidings")


class TrackingForm(forms.ModelForm):
    class Meta:
        model = SendingSettings
        fields = ["tracking", "unsubscribe_mailto"]
        labels = {
            "tracking": _("Opens and clicks"),
            "unsubscribe_mailto": _("Unsubscribe mailbox (optional, for List-Unsubscribe mailto)"),
        }
