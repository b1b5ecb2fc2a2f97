"""The customer's side of a breach notice: the banner's "I have read it" (P33)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from tidings.accounts.models import User
from tidings.breaches import services
from tidings.breaches.models import Notice


@login_required
@require_POST
def acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    # Only the user's own notice: another's number is simply not found.
    user = request.user
    assert isinstance(user, User)  # login_required
    notice = Notice.objects.filter(pk=pk, user=user).first()
    if notice is None:
        raise Http404
    services.acknowledge(notice, by=user)
    next_url = request.POST.get("next", "")
    return redirect(next_url if next_url.startswith("/") and not next_url.startswith("//") else "/")
