from __future__ import annotations

from typing import Any

from django import forms

from tidings.sending.models import Relay, SendingSettings
from tidings.sending.services import SettingsError, check_relay_host


class ScheduleForm(forms.Form):
    when = forms.DateTimeField(
        label="Send at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    timezone = forms.CharField(label="Time zone", initial="UTC", max_length=64)

    def clean_timezone(self) -> Any:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        name = self.cleaned_data["timezone"].strip()
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(
                f"“{name}” is not a time zone, e.g. Europe/Paris."
            ) from None


class RelayForm(forms.ModelForm):
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted; never shown again. Leave empty to keep the current one.",
    )

    class Meta:
        model = Relay
        fields = [
            "name", "host", "port", "security", "username", "password", "esp",
            "max_connections", "rate_per_second", "rate_per_hour", "active",
        ]  # fmt: skip

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
        label="Postal address shown in every campaign",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
        help_text="Street and number or post office box, postcode, place, country.",
    )


class DomainForm(forms.Form):
    domain = forms.CharField(max_length=253, help_text="e.g. news.example.com")
    selector = forms.CharField(max_length=63, initial="tidings")


class TrackingForm(forms.ModelForm):
    class Meta:
        model = SendingSettings
        fields = ["tracking", "unsubscribe_mailto"]
        labels = {
            "tracking": "Opens and clicks",
            "unsubscribe_mailto": "Unsubscribe mailbox (optional, for List-Unsubscribe mailto)",
        }
