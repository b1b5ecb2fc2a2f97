"""Registration, confirmation, login and My Account. Thin: the services do the writing."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from tidings.accounts import services, throttling, tokens
from tidings.accounts.decorators import customer_required
from tidings.accounts.forms import (
    CloseAccountForm,
    LanguageForm,
    LocaleForm,
    LoginForm,
    PasswordForm,
    ProcessingForm,
    ProfileForm,
    RegistrationForm,
    ResendForm,
)
from tidings.accounts.models import User
from tidings.accounts.selectors import data_held_on
from tidings.accounts.services import AccountError
from tidings.core import baseurl, locales
from tidings.privacy import portability
from tidings.privacy.forms import AccountExportForm


def register(request: HttpRequest) -> HttpResponse:
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            email = services.register_customer(
                **form.cleaned_data, language=translation.get_language() or ""
            )
        except AccountError as error:
            form.add_error(None, str(error))
        else:
            return render(request, "accounts/registered.html", {"email": email})
    return render(request, "accounts/register.html", {"form": form})


def confirm(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user = services.confirm_email(token)
    except tokens.InvalidLink as error:
        return render(
            request,
            "accounts/link_invalid.html",
            {"error": error, "resend": ResendForm()},
            status=400,
        )
    messages.success(
        request, _("Thank you: %(email)s is confirmed. You can log in now.") % {"email": user.email}
    )
    return redirect("accounts:login")


def confirm_new_email(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user = services.confirm_email_change(token)
    except tokens.InvalidLink as error:
        return render(request, "accounts/link_invalid.html", {"error": error}, status=400)
    messages.success(request, _("Your email address is now %(email)s.") % {"email": user.email})
    return redirect("accounts:my_account" if request.user.is_authenticated else "accounts:login")


@require_POST
def resend_confirmation(request: HttpRequest) -> HttpResponse:
    form = ResendForm(request.POST)
    if form.is_valid():
        user = User.objects.filter(
            email__iexact=form.cleaned_data["email"], email_confirmed_at__isnull=True
        ).first()
        if user is not None:
            services.send_confirmation(user)
    # The same answer whether or not the address is known: no account enumeration.
    messages.info(
        request, _("If that address is waiting for confirmation, a new link is on its way.")
    )
    return redirect("accounts:login")


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if throttling.client_blocked(request):
            return render(request, "accounts/locked_out.html", status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: LoginForm) -> HttpResponse:  # type: ignore[override]
        user = form.get_user()
        if not user.email_confirmed and not user.is_staff:
            form.add_error(None, _("Confirm your email address first: we sent you a link."))
            return self.form_invalid(form)
        response = super().form_valid(form)
        # Logged in, the user's own language applies (UserLocaleMiddleware): no cookie.
        if not user.language:
            # Until they choose, the language they log in with is the one of their mails.
            services.set_locale(
                user, by=user, language=locales.supported_language(translation.get_language())
            )
        return response


def _remember_language(response: HttpResponse, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        samesite="Lax",  # settings.LANGUAGE_COOKIE_SAMESITE
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        secure=settings.LANGUAGE_COOKIE_SECURE,
    )


# No CSRF token, so that a visitor's page sets no cookie before they choose: a forged
# post from another site carries no session (SameSite=Lax) and can set only the cookie.
@csrf_exempt
@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The footer's language selector: a cookie for a visitor, the profile for a user."""
    form = LanguageForm(request.POST)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    response = redirect(target)
    if not form.is_valid():
        messages.error(request, _("Tidings does not speak that language."))
        return response
    language = form.cleaned_data["language"]
    if request.user.is_authenticated and isinstance(request.user, User):
        services.set_locale(request.user, by=request.user, language=language)
    _remember_language(response, language)
    return response


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, _("You are logged out."))
    return redirect("public:home")


class ResetPasswordForm(SetPasswordForm):
    """The reset goes through the service, so it is audited and announced (P19)."""

    def save(self, commit: bool = True) -> User:
        user = self.user
        assert isinstance(user, User)
        services.set_password(user, password=self.cleaned_data["new_password1"], by=user)
        return user


class PasswordResetView(auth_views.PasswordResetView):
    """Django's, with the link built from the configured base URL (https when secure),
    never from the request's Host header and scheme."""

    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/mail/password_reset.txt"
    subject_template_name = "accounts/mail/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    @property
    def extra_email_context(self) -> dict[str, Any]:  # type: ignore[override]
        return {"operator": settings.OPERATOR, "base_url": baseurl.base_url()}


password_reset = PasswordResetView.as_view()
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="accounts/password_reset_done.html"
)
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    template_name="accounts/password_reset_confirm.html",
    form_class=ResetPasswordForm,
    success_url=reverse_lazy("accounts:password_reset_complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="accounts/password_reset_complete.html"
)


def _customer(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


@customer_required
def my_account(request: HttpRequest) -> HttpResponse:
    user = _customer(request)
    if user.account is None:
        return redirect("admin:index")
    return render(
        request,
        "accounts/my_account.html",
        {
            "user": user,
            "account": user.account,
            "held": data_held_on(user.account),
            "export_form": AccountExportForm(),
            "archives": user.account.account_exports.all()[:5],
            "archive_days": settings.ACCOUNT_EXPORT_DAYS,
            "locale_form": _locale_form(user),
        },
    )


def _locale_form(user: User, data: Any = None) -> LocaleForm:
    assert user.account is not None
    initial = {
        "language": user.language,
        "time_zone": user.time_zone or settings.TIME_ZONE,
        "contact_language": user.account.language,
    }
    return LocaleForm(data, initial=initial)


@customer_required
@require_POST
def change_locale(request: HttpRequest) -> HttpResponse:
    """My Account: the user's language and time zone, the contacts' mail language."""
    user = _customer(request)
    if user.account is None:
        return redirect("admin:index")
    form = _locale_form(user, request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("accounts:my_account")
    data = form.cleaned_data
    try:
        with transaction.atomic():
            services.set_locale(
                user, by=user, language=data["language"], time_zone=data["time_zone"]
            )
            services.set_account_language(user.account, language=data["contact_language"], by=user)
    except AccountError as error:
        messages.error(request, str(error))
        return redirect("accounts:my_account")
    response = redirect("accounts:my_account")
    if data["language"]:
        translation.activate(data["language"])
        _remember_language(response, data["language"])
    messages.success(request, _("Saved."))
    return response


@customer_required
@require_POST
def request_export(request: HttpRequest) -> HttpResponse:
    """ "All my data" (P20): queue the archive; the link comes by email."""
    user = _customer(request)
    if user.account is None:
        return redirect("admin:index")
    form = AccountExportForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose CSV, XLSX or XLS."))
        return redirect("accounts:my_account")
    try:
        portability.request_account_export(user.account, by=user, fmt=form.cleaned_data["format"])
    except portability.ExportRefused as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("We are gathering all your data; we email %(email)s a link when it is ready.")
            % {"email": user.email},
        )
    return redirect("accounts:my_account")


@customer_required
def download_export(request: HttpRequest, pk: int) -> HttpResponse | FileResponse:
    """The archive, for the users of the account it belongs to; 404 for anyone else."""
    user = _customer(request)
    if user.account is None:
        raise Http404
    try:
        export = portability.archive_for_download(user.account, pk, by=user)
    except portability.ExportRefused as error:
        gone = isinstance(error, portability.ArchiveExpired)
        return render(
            request, "accounts/archive_gone.html", {"error": error}, status=410 if gone else 409
        )
    if export is None:
        raise Http404
    path = portability.archive_path(export.file)
    return FileResponse(open(path, "rb"), as_attachment=True, filename=export.filename)


@customer_required
def edit_profile(request: HttpRequest) -> HttpResponse:
    user = _customer(request)
    account = user.account
    if account is None:
        return redirect("admin:index")
    initial = {
        "organisation": account.name,
        "name": user.name,
        "email": user.pending_email or user.email,
        "phone": user.phone,
        "postal_address": user.postal_address,
    }
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        new_email = data["email"].lower() not in (user.email, user.pending_email)
        try:
            # All or nothing: a refused address must not leave the other fields saved.
            with transaction.atomic():
                changed = services.update_profile(
                    user,
                    by=user,
                    name=data["name"],
                    phone=data["phone"],
                    postal_address=data["postal_address"],
                )
                changed += services.rename_account(account, name=data["organisation"], by=user)
                if new_email:
                    services.request_email_change(user, new_email=data["email"], by=user)
        except AccountError as error:
            user.refresh_from_db()
            form.add_error(None, str(error))
        else:
            if new_email:
                messages.info(
                    request,
                    _("We sent a link to %(data)s: your address changes once you follow it.")
                    % {"data": data["email"]},
                )
            if changed:
                messages.success(request, _("Saved. We emailed you a note of what changed."))
            return redirect("accounts:my_account")
    return render(request, "accounts/edit_profile.html", {"form": form})


@customer_required
def processing(request: HttpRequest) -> HttpResponse:
    user = _customer(request)
    form = ProcessingForm(
        request.POST or None, initial={f: getattr(user, f) for f in services.PROCESSING_SWITCHES}
    )
    if request.method == "POST" and form.is_valid():
        if services.set_processing(user, by=user, **form.cleaned_data):
            messages.success(request, _("Your choices are saved and apply from now on."))
        else:
            messages.info(request, _("Nothing changed: these were already your choices."))
        return redirect("accounts:my_account")
    return render(request, "accounts/processing.html", {"form": form, "account": user.account})


@customer_required
@require_POST
def restriction(request: HttpRequest) -> HttpResponse:
    """Restrict all processing of the account's data (GDPR art. 18), or lift it."""
    user = _customer(request)
    assert user.account is not None
    try:
        if request.POST.get("action") == "lift":
            services.lift_account_restriction(user.account, by=user)
            messages.success(request, _("The restriction is lifted: everything works as before."))
        else:
            services.restrict_account(user.account, by=user, reason=request.POST.get("reason", ""))
            messages.success(
                request,
                _("Processing is restricted: your data is kept, nothing else is done with it."),
            )
    except AccountError as error:
        messages.error(request, str(error))
    return redirect("accounts:processing")


@customer_required
def change_password(request: HttpRequest) -> HttpResponse:
    user = _customer(request)
    form = PasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.check_password(user, form.cleaned_data["current_password"])
            services.set_password(user, password=form.cleaned_data["new_password"], by=user)
        except AccountError as error:
            form.add_error(None, str(error))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("Your password is changed."))
            return redirect("accounts:my_account")
    return render(request, "accounts/change_password.html", {"form": form})


@customer_required
def close_account(request: HttpRequest) -> HttpResponse:
    user = _customer(request)
    if user.account is None:
        return redirect("admin:index")
    form = CloseAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.check_password(user, form.cleaned_data["password"])
            services.close_account(user.account, by=user, erase_now=form.cleaned_data["erase_now"])
        except AccountError as error:
            form.add_error(None, str(error))
        else:
            return redirect("accounts:closed")
    return render(
        request,
        "accounts/close.html",
        {"form": form, "retention": settings.RETENTION},
    )


# A closed account's own pages: where customer_required leads, and the way back.
@login_required
def closed(request: HttpRequest) -> HttpResponse:
    user = _customer(request)
    return render(
        request, "accounts/closed.html", {"account": user.account, "retention": settings.RETENTION}
    )


@login_required
@require_POST
def reopen(request: HttpRequest) -> HttpResponse:
    user = _customer(request)
    if user.account is None:
        return redirect("admin:index")
    try:
        services.reopen_account(user.account, by=user)
    except AccountError as error:
        messages.error(request, str(error))
        return redirect("accounts:closed")
    messages.success(
        request, _("Welcome back: your account is open again and nothing will be erased.")
    )
    return redirect("accounts:my_account")
