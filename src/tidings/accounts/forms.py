from django import forms
from django.contrib.auth.forms import AuthenticationForm

from tidings.accounts.services import PROCESSING_SWITCHES


class RegistrationForm(forms.Form):
    organisation = forms.CharField(label="Organisation name", max_length=200)
    name = forms.CharField(label="Your name", max_length=150)
    email = forms.EmailField(label="Email", max_length=254)
    password = forms.CharField(
        label="Password", widget=forms.PasswordInput, min_length=10, max_length=128
    )
    postal_address = forms.CharField(
        label="Postal address (optional, for invoices)",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    phone = forms.CharField(label="Phone (optional)", required=False, max_length=40)


class LoginForm(AuthenticationForm):
    username = forms.EmailField(label="Email", max_length=254)


class ProfileForm(forms.Form):
    organisation = forms.CharField(label="Organisation name", max_length=200)
    name = forms.CharField(label="Your name", max_length=150)
    email = forms.EmailField(label="Email", max_length=254)
    phone = forms.CharField(label="Phone", required=False, max_length=40)
    postal_address = forms.CharField(
        label="Postal address",
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
    current_password = forms.CharField(widget=forms.PasswordInput, max_length=128)
    new_password = forms.CharField(widget=forms.PasswordInput, min_length=10, max_length=128)


class CloseAccountForm(forms.Form):
    password = forms.CharField(
        label="Enter your password to confirm", widget=forms.PasswordInput, max_length=128
    )
    erase_now = forms.BooleanField(
        label="Erase now instead of after the grace period (this cannot be undone)", required=False
    )


class ResendForm(forms.Form):
    email = forms.EmailField(max_length=254)
