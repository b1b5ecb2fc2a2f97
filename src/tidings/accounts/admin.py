"""Customers' accounts and users in the staff console (P7, P19, P32).

Staff changes are made through tidings.accounts.services, with the staff member as the
actor and their stated reason, so each change is audited and the customer is told.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from tidings.accounts import services
from tidings.accounts.models import Account, User
from tidings.core import addresses
from tidings.staff.admin_site import site
from tidings.staff.console import AuditedModelAdmin, ServiceRefused
from tidings.staff.reason import stated_reason
from tidings.staff.roles import VIEW_USER_BILLING

PROFILE_FIELDS = ("name", "phone", "postal_address")
PROCESSING_FIELDS = tuple(services.PROCESSING_SWITCHES)
USER_FIELDS = (
    "email",
    "pending_email",
    *PROFILE_FIELDS,
    "account",
    *PROCESSING_FIELDS,
    "is_active",
    "date_joined",
    "email_confirmed_at",
    "last_login",
)
EDITABLE_USER_FIELDS = {"email", *PROFILE_FIELDS, *PROCESSING_FIELDS}
# What billing may see of a user: what an invoice is addressed with.
BILLING_USER_FIELDS = ("email", "name", "postal_address", "account")


def _staff(request: HttpRequest) -> User:
    # The console's admin_view has already let only logged-in staff through.
    assert isinstance(request.user, User)
    return request.user


def _reason(request: HttpRequest) -> str:
    reason = stated_reason(request)
    return reason.text if reason else ""


class UserChangeForm(forms.ModelForm):
    def clean_email(self) -> str:
        # Said the way the customer's own form says it, not as a database constraint.
        try:
            email = addresses.normalise_email(self.cleaned_data["email"])
        except addresses.InvalidAddress as error:
            raise forms.ValidationError(str(error)) from None
        if User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("Another account already uses this email address."))
        return email


class UserAdmin(AuditedModelAdmin):
    form = UserChangeForm
    list_display = ("email", "name", "account")
    search_fields = ("email", "name")
    ordering = ("email",)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Encrypted fields are text columns; a phone number still wants a one-line box.
        if db_field.name == "phone":
            kwargs["widget"] = forms.TextInput()
        elif db_field.name == "postal_address":
            kwargs["widget"] = forms.Textarea(attrs={"rows": 3, "cols": 40})
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[User]:
        # Customers' users only: staff members are not customers' data.
        return super().get_queryset(request).filter(is_staff=False).select_related("account")

    def _sees_everything(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.view_user") or request.user.has_perm(
            "accounts.change_user"
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) or request.user.has_perm(VIEW_USER_BILLING)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return USER_FIELDS if self._sees_everything(request) else BILLING_USER_FIELDS

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return tuple(f for f in self.get_fields(request, obj) if f not in EDITABLE_USER_FIELDS)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        # The form has already copied the new values onto `obj`; the services compare
        # against what is stored, so they get a fresh copy.
        user = User.objects.select_for_update().get(pk=obj.pk)
        changed = set(form.changed_data)
        new = form.cleaned_data
        actor, reason = _staff(request), _reason(request)
        try:
            profile = {f: new[f] for f in PROFILE_FIELDS if f in changed}
            if profile:
                services.update_profile(user, by=actor, reason=reason, **profile)
            switches = {f: new[f] for f in PROCESSING_FIELDS if f in changed}
            if switches:
                services.set_processing(user, by=actor, reason=reason, **switches)
            if "email" in changed and new["email"] != user.email:
                services.request_email_change(user, new_email=new["email"], by=actor, reason=reason)
                self.message_user(
                    request,
                    "A confirmation link was sent to the new address; the change takes "
                    "effect when the customer confirms it.",
                    messages.INFO,
                )
        except services.AccountError as error:
            raise ServiceRefused(str(error)) from error


class AccountAdmin(AuditedModelAdmin):
    list_display = ("id", "name", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)
    fields = ("name", "status", "created_at", "closed_at", "erase_after", "erase_deadline")
    readonly_fields = ("status", "created_at", "closed_at", "erase_after", "erase_deadline")

    def save_model(self, request: HttpRequest, obj: Account, form: Any, change: bool) -> None:
        account = Account.objects.select_for_update().get(pk=obj.pk)
        if "name" not in form.changed_data:
            return
        try:
            services.rename_account(
                account, name=form.cleaned_data["name"], by=_staff(request), reason=_reason(request)
            )
        except services.AccountError as error:
            raise ServiceRefused(str(error)) from error


site.register(User, UserAdmin)
site.register(Account, AccountAdmin)
