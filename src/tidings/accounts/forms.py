from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from tidings.accounts.services import PROCESSING_SWITCHES
from tidings.core.locales import time_zone_choices


class RegistrationForm(forms.Form):
    organisation = forms.CharField(label=_("Organisation name"), max_length=200)
    name = forms.CharField(label=_("Your name"), max_length=150)
    email = forms.EmailField(label=_("Email"), max_length=254)
    password = forms.CharField(
        label=_("Password"), widget=forms.PasswordInput, min_length=10, max_length=128
    )
    # No postal address, no phone (P1): the address is asked when ordering, for the
    # invoice; a phone only if the customer adds one in My Account.


class LoginForm(AuthenticationForm):
    username = forms.EmailField(label=_("Email"), max_length=254)


class ProfileForm(forms.Form):
    organisation = forms.CharField(label=_("Organisation name"), max_length=200)
    name = forms.CharField(label=_("Your name"), max_length=150)
    email = forms.EmailField(label=_("Email"), max_length=254)
    phone = forms.CharField(label=_("Phone"), required=False, max_length=40)
    postal_address = forms.CharField(
        label=_("Postal address"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ProcessingForm(forms.Form):
    allow_product_updates = forms.BooleanField(
        label=PROCESSING_SWITCHES["allow_product_updates"], required=False
    )
    allow_support_followups = forms.BooleanField(
        label=PROCESSING_SWITCHES["allow_support_followups"], required=False
    )
    allow_analytics = forms.BooleanField(
        label=PROCESSING_SWITCHES["allow_analytics"], required=False
    )


class PasswordForm(forms.Form):
    current_password = forms.CharField(
        label=_("Current password"), widget=forms.PasswordInput, max_length=128
    )
    new_password = forms.CharField(
        label=_("New password"), widget=forms.PasswordInput, min_length=10, max_length=128
    )


class CloseAccountForm(forms.Form):
    password = forms.CharField(
        label=_("Enter your password to confirm"), widget=forms.PasswordInput, max_length=128
    )
    erase_now = forms.BooleanField(
        label=_("Erase now instead of after the grace period (this cannot be undone)"),
        required=False,
    )


class ResendForm(forms.Form):
    email = forms.EmailField(label=_("Email"), max_length=254)


class LocaleForm(forms.Form):
    """My Account: the user's language and time zone, and the contacts' mail language."""

    language = forms.ChoiceField(
        label=_("Language"),
        choices=[("", _("The browser's language")), *settings.LANGUAGES],
        required=False,
    )
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices, required=False)
    contact_language = forms.ChoiceField(
        label=_("Language of the mails your contacts get (confirmations, receipts)"),
        choices=settings.LANGUAGES,
    )


class LanguageForm(forms.Form):
    """The footer's language selector."""

    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
