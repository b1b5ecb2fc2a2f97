"""Follow-ups (P6): an agent schedules a message for later; the scheduler sends those
due, once each, and only to a customer who still allows follow-ups (P18) and whom the
one users' rule lets us mail (accounts.mailability, service: an active user of an open,
unrestricted account); the others are cancelled with the reason in their note.
Switching follow-ups off cancels the pending ones at once."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.accounts.models import User
from tidings.core.mail import Kind
from tidings.desk import services
from tidings.desk.models import Channel, Conversation, FollowUp, Message
from tidings.desk.services import DeskError
from tidings.staff import audit

SWITCH = "allow_support_followups"


def schedule(conversation: Conversation, *, by: User, due_at: datetime, body: str) -> FollowUp:
    if not by.is_staff:
        raise DeskError(_("Only the operator's staff schedule follow-ups."))
    body = services.clean_text(body, limit=services.BODY_MAX, what=_("message"))
    if not body:
        raise DeskError(_("Write the follow-up's message."))
    if due_at <= timezone.now():
        raise DeskError(_("A follow-up is scheduled for a later date."))
    if services.followup_refused(conversation) == "switched off":
        raise DeskError(_("The customer has switched off follow-ups."))
    with transaction.atomic():
        followup = FollowUp.objects.create(
            conversation=conversation, due_at=due_at, body=body, created_by=by
        )
        audit.record(audit.AuditEvent.Action.CREATE, followup, by=by, fields=["due_at"])
    return followup


def cancel(followup: FollowUp, *, note: str) -> None:
    FollowUp.objects.filter(pk=followup.pk, status=FollowUp.Status.PENDING).update(
        status=FollowUp.Status.CANCELLED, done_at=timezone.now(), note=note[:200]
    )


def processing_changed(user: User, switches: dict[str, bool]) -> None:
    """accounts.set_processing's hook: follow-ups switched off cancel the pending ones."""
    if switches.get(SWITCH) is False:
        FollowUp.objects.filter(conversation__user=user, status=FollowUp.Status.PENDING).update(
            status=FollowUp.Status.CANCELLED, done_at=timezone.now(), note="switched off"
        )


def send_due(now: datetime | None = None) -> int:
    """Send each due follow-up once (idempotent: a row is claimed under a lock and
    marked in the same transaction as its mail is posted). Returns how many went."""
    now = now or timezone.now()
    sent = 0
    due = FollowUp.objects.filter(status=FollowUp.Status.PENDING, due_at__lte=now)
    for pk in list(due.values_list("pk", flat=True)[:500]):
        with transaction.atomic():
            followup = (
                FollowUp.objects.select_for_update(of=("self",))
                .select_related("conversation__user__account", "conversation__queue")
                .filter(pk=pk, status=FollowUp.Status.PENDING)
                .first()
            )
            if followup is None:
                continue
            conversation = followup.conversation
            why_not = services.followup_refused(conversation)
            if why_not:
                cancel(followup, note=why_not)
                continue
            public_id = services.mail_customer(
                conversation, "desk/mail/answer", {"body": followup.body}, kind=Kind.SUPPORT
            )
            services.add_message(
                conversation,
                Message.Direction.OUT,
                Channel.MAIL,
                followup.body,
                message_id=str(public_id).replace("-", ""),
                author=followup.created_by,
            )
            followup.status = FollowUp.Status.SENT
            followup.done_at = timezone.now()
            followup.save(update_fields=["status", "done_at"])
            sent += 1
    return sent
