"""The support desk in the staff console: the queue, one conversation with the
customer's other conversations beside it (P6), answers, internal notes, canned answers,
assignment, statuses, follow-ups, and changes to the customer's data made through the
same service as My Account (P32).

Staff need the desk's permission (the support role, staff.roles) and a verified second
factor (the console's admin_view). Every page states a reason first and writes what it
showed to the audit log (P7); the customer's account data (phone, postal address) is
shown only after a reason given for this conversation, and that read is audited too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tidings.accounts.models import User
from tidings.desk import chat, followups, ratings, search, selectors, services
from tidings.desk.models import CannedAnswer, Channel, Conversation, FollowUp, Message, Queue
from tidings.staff import audit
from tidings.staff.admin_site import site
from tidings.staff.reason import stated_reason

VIEW = "desk.view_conversation"
CHANGE = "desk.change_conversation"
LISTED_FIELDS = ["email", "name", "subject"]
SHOWN_FIELDS = ["email", "name", "subject", "messages"]
CUSTOMER_FIELDS = ["name", "email", "phone", "postal_address"]
PAGE = 50


class FollowUpForm(forms.Form):
    due_at = forms.DateTimeField(
        label=gettext_lazy("Send on"),
        help_text=gettext_lazy("YYYY-MM-DD HH:MM, in your time zone."),
    )
    body = forms.CharField(label=gettext_lazy("Message"), widget=forms.Textarea)


class CustomerDataForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=150)
    phone = forms.CharField(label=gettext_lazy("Phone"), max_length=50, required=False)
    postal_address = forms.CharField(
        label=gettext_lazy("Postal address"), required=False, widget=forms.Textarea
    )


def _id(value: str) -> int | None:
    """A row's id as typed in a form or an address, or None: digits only and within a
    database integer (SQLite cannot even be asked for a larger one)."""
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def _agent(request: HttpRequest, permission: str = VIEW) -> User:
    user = request.user
    if not isinstance(user, User) or not user.is_staff or not user.has_perm(permission):
        raise PermissionDenied
    return user


def _reason_or_ask(request: HttpRequest) -> tuple[str, HttpResponse | None]:
    reason = stated_reason(request)
    if reason is None:
        url = reverse(f"{site.name}:staff_reason")
        return "", redirect(f"{url}?{urlencode({'next': request.get_full_path()})}")
    return reason.text, None


def queue_page(request: HttpRequest) -> HttpResponse:
    agent = _agent(request)
    reason, ask = _reason_or_ask(request)
    if ask is not None:
        return ask
    rows = selectors.with_clock(Conversation.objects.select_related("queue", "assignee"))
    status = request.GET.get("status", "active")
    if status == "active":
        rows = rows.exclude(status=Conversation.Status.SOLVED)
    elif status in Conversation.Status.values:
        rows = rows.filter(status=status)
    queue_id = _id(request.GET.get("queue", ""))
    if queue_id is not None:
        rows = rows.filter(queue_id=queue_id)
    if request.GET.get("mine"):
        rows = rows.filter(assignee=agent)
    # A NUL cannot be in any stored text (PostgreSQL refuses it in a query, too).
    query = request.GET.get("q", "").replace("\x00", "").strip()
    listed = LISTED_FIELDS
    if query:
        # By number, address or name; subjects and bodies (notes too) through the keyed
        # index, as they are encrypted (desk/search.py).
        found = Q(email__icontains=query) | Q(name__icontains=query)
        number = _id(query.lstrip("#"))
        if number is not None:
            found |= Q(pk=number)
        words = search.matching(query, with_notes=True)
        if words is not None:
            found |= words
            # What was searched in is what the list discloses of each row.
            listed = [*LISTED_FIELDS, "messages"]
        rows = rows.filter(found)
    sort = request.GET.get("sort", "")
    if sort == "due":
        rows = rows.order_by(F("next_due").asc(nulls_last=True), "-updated_at", "-pk")
    elif sort == "-due":
        rows = rows.order_by(F("next_due").desc(nulls_last=True), "-updated_at", "-pk")
    else:
        sort = ""
        rows = rows.order_by("-updated_at", "-pk")
    shown = list(rows[:PAGE])
    now = timezone.now()
    if shown:
        audit.record_many(
            audit.AuditEvent.Action.LIST,
            shown,
            by=agent,
            fields=listed,
            reason=reason,
            account_id_of=lambda c: c.account_id,
        )
    return TemplateResponse(
        request,
        "desk/staff/queue.html",
        {
            **site.each_context(request),
            "title": _("Support desk"),
            "conversations": shown,
            "queues": Queue.objects.all(),
            "statuses": Conversation.Status.choices,
            "status": status,
            "query": query,
            "now": now,
            "sort": sort,
            "due_sort_query": _with(request, sort="-due" if sort == "due" else "due"),
            "overdue_count": selectors.overdue(now).count(),
            "overdue_query": _with(request, status="active", sort="due"),
            "by_agent": ratings.by_agent(),
            "by_queue": ratings.by_queue(),
            "waiting_chats": chat.waiting(),
        },
    )


def _with(request: HttpRequest, **values: str) -> str:
    """The queue's query string with `values` changed (the other filters kept)."""
    query = request.GET.copy()
    for key, value in values.items():
        query[key] = value
    return query.urlencode()


def conversation_page(request: HttpRequest, pk: int) -> HttpResponse:
    agent = _agent(request)
    reason, ask = _reason_or_ask(request)
    if ask is not None:
        return ask
    conversation = get_object_or_404(
        Conversation.objects.select_related("queue", "assignee", "user__account"), pk=pk
    )
    context: dict[str, Any] = {"followup_form": FollowUpForm(), "customer_form": None}
    if request.method == "POST":
        _agent(request, CHANGE)
        response = _act(request, agent, conversation, context)
        if response is not None:
            return response
        conversation.refresh_from_db()
    audit.record(
        audit.AuditEvent.Action.READ,
        conversation,
        by=agent,
        fields=SHOWN_FIELDS,
        reason=reason,
        account_id=conversation.account_id,
    )
    canned = None
    canned_id = _id(request.GET.get("canned", ""))
    if canned_id is not None:
        found = CannedAnswer.objects.filter(pk=canned_id).first()
        if found is not None:
            canned = services.fill_canned(found, conversation, agent=agent)
    return TemplateResponse(
        request,
        "desk/staff/conversation.html",
        {
            **site.each_context(request),
            **context,
            "title": _("Conversation #%(id)s") % {"id": conversation.pk},
            "conversation": conversation,
            "now": timezone.now(),
            "thread": selectors.thread(conversation, with_notes=True),
            "others": services.conversations_of(conversation),
            "followups": conversation.followups.all(),
            "canned_answers": CannedAnswer.objects.all(),
            "canned": canned,
            "agents": User.objects.filter(is_staff=True, is_active=True).order_by("name"),
            "statuses": Conversation.Status.choices,
            "priorities": Conversation.Priority.choices,
            **_chat_context(conversation),
        },
        status=400 if context.get("error") else 200,
    )


def _chat_context(conversation: Conversation) -> dict[str, Any]:
    """A chat's page carries the live chat (desk/_chat_panel.html) beside the thread."""
    if conversation.channel != Channel.CHAT:
        return {}
    shown = conversation.messages.exclude(direction=Message.Direction.NOTE).select_related("author")
    return {
        "chat": True,
        "lines": [chat.said(m, conversation) for m in shown],
        "socket_path": f"/ws/desk/agent/{conversation.pk}/",
        "live": conversation.status in chat.LIVE,
        "max_chars": settings.DESK["chat_message_max_chars"],
    }


def _act(
    request: HttpRequest, agent: User, conversation: Conversation, context: dict[str, Any]
) -> HttpResponse | None:
    """One action of the conversation page; a redirect when done, None to show the page
    again (with the error, or with the customer's data)."""
    action = request.POST.get("action", "")
    post = request.POST
    try:
        if action == "reply":
            services.reply(conversation, by=agent, body=post.get("body", ""))
            messages.success(request, _("Your answer is on its way."))
        elif action == "note":
            services.add_note(conversation, by=agent, body=post.get("body", ""))
        elif action == "assign":
            chosen = post.get("assignee", "")
            chosen_id = _id(chosen)
            to = (
                User.objects.filter(pk=chosen_id, is_staff=True).first()
                if chosen_id is not None
                else None
            )
            services.assign(conversation, to=to, by=agent)
        elif action == "status":
            services.set_status(conversation, status=post.get("status", ""), by=agent)
        elif action == "priority":
            services.set_priority(conversation, priority=post.get("priority", ""), by=agent)
        elif action == "followup":
            form = FollowUpForm(post)
            if not form.is_valid():
                context["followup_form"] = form
                context["error"] = _("Check the follow-up's date and message.")
                return None
            due: datetime = form.cleaned_data["due_at"]
            followups.schedule(conversation, by=agent, due_at=due, body=form.cleaned_data["body"])
            messages.success(request, _("The follow-up is scheduled."))
        elif action == "cancel_followup":
            found = get_object_or_404(
                FollowUp, pk=_id(post.get("followup", "")), conversation=conversation
            )
            followups.cancel(found, note="cancelled by staff")
        elif action == "show_customer":
            _show_customer(request, agent, conversation, context)
            return None
        elif action == "change_customer":
            data_form = CustomerDataForm(post)
            if not data_form.is_valid() or conversation.user is None:
                context["customer_form"] = data_form
                context["error"] = _("Check the customer's data.")
                return None
            changes = services.change_customer_data(
                conversation, by=agent, **data_form.cleaned_data
            )
            messages.success(
                request,
                _("Changed: %(fields)s. The customer is told by email.")
                % {"fields": ", ".join(str(c.label) for c in changes) or _("nothing")},
            )
        else:
            context["error"] = _("Unknown action.")
            return None
    except services.DeskError as error:
        context["error"] = str(error)
        return None
    return redirect("staff_desk_conversation", pk=conversation.pk)


def _show_customer(
    request: HttpRequest, agent: User, conversation: Conversation, context: dict[str, Any]
) -> None:
    """The customer's account data, after a reason stated for this conversation (P7)."""
    reason = request.POST.get("reason", "").strip()
    customer = conversation.user
    if customer is None:
        context["error"] = _("This conversation is not tied to a customer's account.")
        return
    if len(reason) < 3:
        context["error"] = _("Say why you need to see the customer's data.")
        return
    audit.record(
        audit.AuditEvent.Action.READ,
        customer,
        by=agent,
        fields=CUSTOMER_FIELDS,
        reason=f"{reason} (support conversation #{conversation.pk})",
    )
    context["customer"] = customer
    context["customer_form"] = CustomerDataForm(
        initial={f: getattr(customer, f) for f in ("name", "phone", "postal_address")}
    )
