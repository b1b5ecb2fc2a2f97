"""The customer's inbox of their contacts' requests (access, correction, erasure,
objection): due dates shown, overdue ones highlighted, an erasure fulfilled in one click.

Thin: every page starts from the logged-in user's account (another account's request is
a 404) and every write goes through `tidings.audience.rights`.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _

from tidings.accounts.decorators import account_of, customer_required
from tidings.audience import restriction, rights
from tidings.audience.models import ContactRequest

PAGE = 200


@customer_required
def inbox(request: HttpRequest) -> HttpResponse:
    account = account_of(request)
    show = "closed" if request.GET.get("show") == "closed" else "open"
    rows = ContactRequest.objects.filter(account=account)
    if show == "open":
        rows = rows.filter(status=ContactRequest.Status.OPEN).order_by("due_at")
    else:
        rows = rows.exclude(status=ContactRequest.Status.OPEN).order_by("-closed_at")
    return render(request, "audience/requests.html", {"rows": rows[:PAGE], "show": show})


@customer_required
def detail(request: HttpRequest, request_uuid: uuid.UUID) -> HttpResponse:
    account = account_of(request)
    req = get_object_or_404(
        ContactRequest.objects.select_related("contact"), account=account, uuid=request_uuid
    )
    errors: list[str] = []
    answer = ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        answer = request.POST.get("answer", "")
        try:
            if action == "erase":
                rights.fulfil_erasure(account, req)
                messages.success(
                    request,
                    _(
                        "The contact is erased from all your lists and suppressed; they have "
                        "been told."
                    ),
                )
                return redirect("audience:requests")
            if action == "restrict":
                rights.fulfil_restriction(account, req)
                messages.success(
                    request,
                    _(
                        "Processing of the contact's data is restricted: it is kept and used for "
                        "nothing else. They have been told."
                    ),
                )
                return redirect("audience:requests")
            if action == "answer":
                rights.answer_request(account, req, answer=answer)
                messages.success(request, _("Your answer is on its way; the request is closed."))
                return redirect("audience:requests")
            errors.append("Choose what to do with the request.")
        except rights.RequestError as error:
            errors.append(str(error))
        req.refresh_from_db()
    return render(
        request,
        "audience/request.html",
        {
            "req": req,
            "errors": errors,
            "answer": answer,
            "notice_days": restriction.notice_days(),
        },
        status=400 if errors else 200,
    )
