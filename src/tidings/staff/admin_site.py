"""The staff console: Django's admin at /staff/admin/, behind a second factor (P7, P9)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user, user_has_device
from django_otp.admin import OTPAdminAuthenticationForm

from tidings.staff.console import AuditedModelAdmin
from tidings.staff.reason import ReasonForm, state_reason, stated_reason

# How a staff member gets an authenticator; shown on the login page, and as the error
# for someone who has none.
HOW_TO_GET_A_DEVICE = (
    "Ask an administrator to run `tidings manage staffmember YOUR-EMAIL --new-device`: it "
    "writes your authenticator link (otpauth://…) to a file in the data directory, which you "
    "add to your authenticator app. The first administrator's link is in "
    "admin-credentials.txt, written there by `tidings createadmin`."
)
NO_DEVICE_HELP = (
    "Staff need a one-time code from an authenticator app, and you have none set up yet. "
    + HOW_TO_GET_A_DEVICE
)


class StaffLoginForm(OTPAdminAuthenticationForm):
    """Password, then a TOTP code; a clear message for staff who have no device."""

    otp_token = forms.CharField(
        label=_("Code from your authenticator app"),
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = _("Email")

    def clean_otp(self, user: Any) -> None:
        if user is not None and not user_has_device(user, confirmed=True):
            raise forms.ValidationError(NO_DEVICE_HELP, code="no_device")
        super().clean_otp(user)

    def _chosen_device(self, user: Any) -> Any:
        # With a single device there is nothing to choose: use it rather than make the
        # person submit the form twice.
        device = super()._chosen_device(user)
        if device is None:
            devices = list(devices_for_user(user, confirmed=True))
            if len(devices) == 1:
                device = devices[0]
        return device


class StaffAdminSite(admin.AdminSite):
    site_title = _("Tidings staff")
    index_title = _("Staff console")
    login_template = "staff/admin/login.html"
    # Django's index with the privacy office on top, for the staff who may open it.
    index_template = "staff/admin/index.html"

    @property
    def site_header(self) -> str:  # type: ignore[override]
        return _("%(name)s · staff console") % {"name": settings.OPERATOR["name"]}

    @property
    def login_form(self) -> type[AdminAuthenticationForm]:  # type: ignore[override]
        # Read at request time, so the setting can be changed without re-importing.
        return StaffLoginForm if settings.STAFF_REQUIRE_2FA else AdminAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        """Staff, and, when STAFF_REQUIRE_2FA, verified by an OTP device in this session (P9)."""
        if not super().has_permission(request):
            return False
        return not settings.STAFF_REQUIRE_2FA or request.user.is_verified()  # type: ignore[union-attr]

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        # Every page of the console must audit its reads and skip LogEntry: refuse a
        # plain ModelAdmin rather than let one slip in unaudited.
        if admin_class is None or not issubclass(admin_class, AuditedModelAdmin):
            raise ImproperlyConfigured("Register staff console pages with an AuditedModelAdmin")
        super().register(model_or_iterable, admin_class, **options)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        extra = [path("reason/", self.admin_view(self.reason_view), name="staff_reason")]
        return extra + super().get_urls()

    def get_app_list(
        self, request: HttpRequest, app_label: str | None = None
    ) -> list[dict[str, Any]]:
        """The index and the side menu, with the apps' and models' names in the reader's
        language (Django's admin shows their verbose names as they are; the names are
        in the catalog through privacy/labels.py)."""
        apps = super().get_app_list(request, app_label)
        for app in apps:
            app["name"] = gettext(str(app["name"]))
            for model in app["models"]:
                model["name"] = gettext(str(model["name"]))
        return apps

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        context["staff_reason"] = stated_reason(request) if hasattr(request, "session") else None
        return context

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        user = request.user
        context = {
            "require_2fa": settings.STAFF_REQUIRE_2FA,
            "no_device_help": NO_DEVICE_HELP,
            "how_to_get_a_device": HOW_TO_GET_A_DEVICE,
            "missing_device": bool(
                settings.STAFF_REQUIRE_2FA
                and user.is_authenticated
                and user.is_staff
                and not user_has_device(user, confirmed=True)
            ),
            **(extra_context or {}),
        }
        return super().login(request, context)

    def reason_view(self, request: HttpRequest) -> HttpResponse:
        """Ask why, before any personal data is shown; then go back where they were going."""
        next_url = request.POST.get("next") or request.GET.get("next") or ""
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            next_url = reverse(f"{self.name}:index")
        form = ReasonForm(request.POST or None, initial=_current_text(request))
        if request.method == "POST" and form.is_valid():
            state_reason(request, form.cleaned_data["reason"])
            return redirect(next_url)
        context = {
            **self.each_context(request),
            "title": _("Why do you need this data?"),
            "form": form,
            "next": next_url,
            "minutes": settings.AUDIT_REASON_MINUTES,
        }
        return TemplateResponse(request, "staff/admin/reason.html", context)


def _current_text(request: HttpRequest) -> dict[str, str]:
    reason = stated_reason(request)
    return {"reason": reason.text} if reason else {}


# Named "admin" so that {% url 'admin:…' %} everywhere keeps working.
site = StaffAdminSite(name="admin")
