"""The customer's pages: logged in, and an account that has not been closed.

Every page of a customer's account (My Account, audience, campaigns, imports and exports,
sending, API keys) is decorated with `customer_required`, which hands the view the
account as `request.account`; only the closing page itself and reopening take a closed
account (`accounts.views.closed`, `reopen`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect

from tidings.accounts.models import Account

View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def customer_required(view: View) -> View:
    """`login_required`, and a closed account's pages lead to the closing page: closing
    stops all processing of the account's data at once (P21), and showing that data is
    processing too. The view finds the account in `request.account` (`account_of`).
    Staff and other users without an account pass through with None there: the pages
    of an audience, campaigns or files answer them 404 (`account_of`), My Account sends
    them to the staff console."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        account = getattr(request.user, "account", None)
        if account is not None and not account.is_processing_allowed:
            return redirect("accounts:closed")
        request.account = account  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return cast(View, login_required(wrapper))


def account_of(request: HttpRequest) -> Account:
    """The account `customer_required` handed the view; 404 for a user without one
    (staff see no customer's audience, campaigns or files)."""
    account: Account | None = getattr(request, "account", None)
    if account is None:
        raise Http404("No account")
    return account
