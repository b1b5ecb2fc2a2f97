"""Account → API keys: create (the key is shown once) and revoke, through apikeys."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from tidings.accounts import apikeys
from tidings.accounts.decorators import customer_required
from tidings.accounts.models import ApiKey, User
from tidings.accounts.services import AccountError
from tidings.core import baseurl


def _customer(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User) or user.account is None:
        raise Http404("No account")
    return user


@customer_required
def api_keys(request: HttpRequest) -> HttpResponse:
    user = _customer(request)
    new_key = ""
    error = ""
    if request.method == "POST":
        try:
            _key, new_key = apikeys.create_api_key(
                user.account,  # type: ignore[arg-type]
                name=request.POST.get("name", ""),
                by=user,
            )
        except AccountError as problem:
            error = str(problem)
    return render(
        request,
        "accounts/api_keys.html",
        {
            # The key is in this one answer only: never stored, never shown again.
            "new_key": new_key,
            "error": error,
            "keys": ApiKey.objects.filter(account=user.account),
            "api_base": baseurl.absolute("/api/v1/"),
        },
        status=400 if error else 200,
    )


@customer_required
@require_POST
def revoke_api_key(request: HttpRequest, key_id: int) -> HttpResponse:
    user = _customer(request)
    api_key = get_object_or_404(ApiKey, pk=key_id, account=user.account)
    apikeys.revoke_api_key(api_key, by=user)
    messages.success(
        request, _("The key “%(name)s” is revoked: it stops working now.") % {"name": api_key.name}
    )
    return redirect("accounts:api_keys")
