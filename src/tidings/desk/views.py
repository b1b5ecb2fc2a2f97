"""The desk's pages for customers: their conversations, a new one, answering, and the
attachments (served only to those entitled, as downloads with nosniff). The staff's
pages are in staff_views."""

from __future__ import annotations

from typing import Any

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.webhooks.brevo import BrevoInboundWebhookView
from anymail.webhooks.mailersend import MailerSendInboundWebhookView
from anymail.webhooks.mailgun import MailgunInboundWebhookView
from anymail.webhooks.postmark import PostmarkInboundWebhookView
from django.conf import settings
from django.contrib import messages
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from tidings.accounts.decorators import customer_required
from tidings.accounts.models import User
from tidings.core import ratelimit
from tidings.core.clientip import client_ip
from tidings.core.uploads import FORM_ENVELOPE, declared_length, too_large_message
from tidings.desk import attachments, chat, ratings, selectors, services
from tidings.desk.forms import (
    ChatForm,
    ConversationForm,
    CustomerChatForm,
    ReplyForm,
    shown_at_token,
)
from tidings.desk.models import Attachment, Channel, Conversation, Message, Rating
from tidings.sending import bounces
from tidings.staff import audit
from tidings.staff.reason import stated_reason

STAFF_PERMISSION = "desk.view_conversation"


def _own(request: HttpRequest, pk: int) -> Conversation:
    user = request.user
    assert isinstance(user, User)
    return get_object_or_404(Conversation, pk=pk, user=user)


def _uploaded(form: ConversationForm | None, request: HttpRequest) -> list[attachments.Accepted]:
    upload = request.FILES.get("attachment")
    if upload is None:
        return []
    return [attachments.accept(upload.name or "attachment", upload.read())]


@customer_required
def conversations(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    return render(
        request,
        "desk/conversations.html",
        {"conversations": Conversation.objects.filter(user=user).select_related("queue")},
    )


class AttachmentUploadHandler(MemoryFileUploadHandler):
    """An attachment is read into memory (it is encrypted before it is stored, so it
    never touches the disk in clear); the body's declared length was checked first."""

    def handle_raw_input(self, *args: Any, **kwargs: Any) -> None:
        super().handle_raw_input(*args, **kwargs)
        self.activated = True


@customer_required
@csrf_exempt
def new_conversation(request: HttpRequest) -> HttpResponse:
    """The upload handler must be set before the CSRF check reads the body."""
    limit = settings.DESK["attachment_max_bytes"]
    if declared_length(request) > limit + FORM_ENVELOPE:
        return render(request, "413.html", {"message": too_large_message(limit)}, status=413)
    request.upload_handlers = [AttachmentUploadHandler(request)]
    return _new_conversation(request)


@csrf_protect
def _new_conversation(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    form = ConversationForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            conversation = services.open_conversation(
                user=user,
                subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"],
                channel=Channel.FORM,
                attachments=_uploaded(form, request),
            )
        except (services.DeskError, attachments.Refused) as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Your request is sent; we will answer by email."))
            return redirect("desk:conversation", pk=conversation.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "desk/new.html", {"form": form}, status=status)


@customer_required
def conversation(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _own(request, pk)
    form = ReplyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.add_customer_message(
                conversation, body=form.cleaned_data["body"], channel=Channel.FORM
            )
        except services.DeskError as error:
            form.add_error(None, str(error))
        else:
            return redirect("desk:conversation", pk=conversation.pk)
    return render(
        request,
        "desk/conversation.html",
        {
            "conversation": conversation,
            "thread": selectors.thread(conversation, with_notes=False),
            "form": form,
        },
    )


def attachment(request: HttpRequest, pk: int) -> HttpResponse:
    """The file, to its customer or to staff whose role grants the desk; a download
    whatever its type, never rendered by the browser."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise Http404
    found = get_object_or_404(Attachment.objects.select_related("message__conversation"), pk=pk)
    conversation = found.message.conversation
    own = conversation.user_id == user.pk and found.message.direction != Message.Direction.NOTE
    if not own:
        # Staff: the desk's permission, a stated reason, and the read in the audit (P7).
        reason = stated_reason(request) if user.is_staff else None
        if not user.has_perm(STAFF_PERMISSION) or reason is None:
            raise Http404
        audit.record(
            audit.AuditEvent.Action.READ,
            found,
            by=user,
            fields=["filename", "data"],
            reason=reason.text,
            account_id=conversation.account_id,
        )
    response = HttpResponse(bytes(found.data), content_type=found.content_type)
    safe = found.filename.replace('"', "").encode("ascii", "replace").decode()
    response["Content-Disposition"] = f'attachment; filename="{safe}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


class FreshMailgunInboundView(MailgunInboundWebhookView):
    """Mailgun's inbound route (forward() with raw MIME): anymail checks the signature,
    then a signature made long ago or a token seen before (a replay) is refused too."""

    def validate_request(self, request: HttpRequest) -> None:
        super().validate_request(request)
        refused = bounces.fresh_webhook_signature(
            "mailgun-inbound", str(request.POST.get("timestamp")), str(request.POST.get("token"))
        )
        if refused:
            raise AnymailWebhookValidationFailure(f"Mailgun inbound refused: {refused}")


# Each provider's inbound view, and the settings it needs besides WEBHOOK_SECRET (HTTP
# basic auth, checked by anymail for every provider). Mailgun and MailerSend also sign
# each request, and anymail checks the signature; Postmark and Brevo sign nothing, so the
# basic-auth secret over HTTPS is their only proof. (SendGrid: anymail dropped it.)
_INBOUND: dict[str, tuple[Any, tuple[str, ...]]] = {
    "mailgun": (FreshMailgunInboundView, ("MAILGUN_WEBHOOK_SIGNING_KEY",)),
    "mailersend": (MailerSendInboundWebhookView, ("MAILERSEND_INBOUND_SECRET",)),
    "postmark": (PostmarkInboundWebhookView, ()),
    "brevo": (BrevoInboundWebhookView, ()),
}
_INBOUND_VIEWS = {name: csrf_exempt(view.as_view()) for name, (view, _k) in _INBOUND.items()}


@csrf_exempt
def provider_inbound(request: HttpRequest, provider: str) -> HttpResponse:
    """A provider's inbound webhook (anymail's view, which verifies it and hands the
    message to desk.inbound through its `inbound` signal). Served only when the webhook
    secret and the provider's own signing secret are configured: an empty secret would
    let anyone post a forged message."""
    if provider not in _INBOUND:
        raise Http404("No such provider")
    required = ("WEBHOOK_SECRET", *_INBOUND[provider][1])
    if not all(settings.ANYMAIL.get(k) for k in required):
        raise Http404("Webhooks are off")
    return _INBOUND_VIEWS[provider](request)


# A link in a mail: the signed token is the authority, no session and no CSRF cookie.
# GET only shows the choices (mail scanners open links); POST records, once.
@csrf_exempt
@never_cache
def rate(request: HttpRequest, token: str) -> HttpResponse:
    try:
        conversation = ratings.open_link(token)
    except ratings.InvalidRating as error:
        return render(request, "desk/rate_done.html", {"error": error}, status=400)
    if request.method != "POST":
        return render(
            request,
            "desk/rate.html",
            {"conversation": conversation, "scores": Rating.Score.choices},
        )
    try:
        score = int(request.POST.get("score", ""))
    except ValueError:
        score = 0
    try:
        ratings.rate(token, score=score, comment=request.POST.get("comment", ""))
    except ratings.InvalidRating as error:
        return render(request, "desk/rate_done.html", {"error": error}, status=400)
    return render(request, "desk/rate_done.html", {})


# --- live chat (desk.chat) ------------------------------------------------------------
# Nothing of the chat is on a page before the visitor follows "Chat with us" (P29): that
# link leads here, and only these pages load the chat's script and open its WebSocket.


@csrf_exempt
@never_cache
def chat_start(request: HttpRequest) -> HttpResponse:
    """A visitor opens a chat: the contact form's checks (anti-bot, a rate per client),
    no cookie; with no agent online, the contact form is offered instead."""
    if not chat.agents_online():
        return render(request, "desk/chat_offline.html", {"ticket_url": _ticket_url(request)})
    form = ChatForm(request.POST or None, initial={"shown": shown_at_token()})
    if request.method == "POST":
        if form.is_bot():
            return render(request, "desk/chat_offline.html", {"ticket_url": _ticket_url(request)})
        if error := form.timing_error():
            form.ask_again(error)
            return render(request, "desk/chat_start.html", {"form": form}, status=400)
        subject = client_ip(request) or "unknown"
        limit = settings.DESK["form_posts_per_hour"]
        if not ratelimit.allow("desk.chat-start", subject, limit=limit, seconds=3600):
            context = {"form": form, "limited": True}
            return render(request, "desk/chat_start.html", context, status=429)
        if form.is_valid():
            try:
                conversation = chat.start(
                    body=form.cleaned_data["body"],
                    email=form.cleaned_data["email"],
                    name=form.cleaned_data["name"],
                )
            except (services.DeskError, chat.ChatRefused) as error:
                form.add_error(None, str(error))
            else:
                return redirect("desk:chat_room", token=chat.token_for(conversation))
        form.data = {**request.POST.dict(), "shown": shown_at_token()}
        return render(request, "desk/chat_start.html", {"form": form}, status=400)
    return render(request, "desk/chat_start.html", {"form": form})


def _ticket_url(request: HttpRequest) -> str:
    user = request.user
    if isinstance(user, User) and user.account_id is not None:
        return reverse("desk:new")
    return reverse("public:contact") + "#write-to-us"


@customer_required
@never_cache
def customer_chat(request: HttpRequest) -> HttpResponse:
    """A customer opens a chat from their support page; it is tied to their account."""
    user = request.user
    assert isinstance(user, User)
    if not chat.agents_online():
        return render(request, "desk/chat_offline.html", {"ticket_url": reverse("desk:new")})
    form = CustomerChatForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            conversation = chat.start(body=form.cleaned_data["body"], user=user)
        except (services.DeskError, chat.ChatRefused) as error:
            form.add_error(None, str(error))
        else:
            return redirect("desk:chat_room", token=chat.token_for(conversation))
    status = 400 if request.method == "POST" else 200
    return render(request, "desk/chat_start.html", {"form": form, "customer": True}, status=status)


@never_cache
def chat_room(request: HttpRequest, token: str) -> HttpResponse:
    """The chat itself, for whoever holds its token (and, for a customer's chat, that
    customer logged in): the messages so far, and the script that talks live."""
    try:
        conversation = chat.conversation_for(token, user=request.user)
    except chat.ChatRefused as error:
        return render(request, "desk/chat_offline.html", {"error": error}, status=404)
    thread = conversation.messages.exclude(direction=Message.Direction.NOTE).select_related(
        "author"
    )
    return render(
        request,
        "desk/chat.html",
        {
            "conversation": conversation,
            "lines": [chat.said(m, conversation) for m in thread],
            "socket_path": f"/ws/desk/chat/{token}/",
            "live": conversation.status in chat.LIVE,
            "max_chars": settings.DESK["chat_message_max_chars"],
        },
    )
