"""Satisfaction (issue 18): solving a conversation mails the customer a signed link; the
link rates it once (a second use changes nothing); ratings show per agent and queue."""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count
from django.utils.translation import gettext as _

from tidings.desk import services
from tidings.desk.models import Conversation, Rating

SALT = services.RATING_SALT
MAX_AGE_DAYS = 30
COMMENT_MAX = 2000


class InvalidRating(ValueError):
    """A link that is not ours, too old, already used, or a score that does not exist."""


def open_link(token: str) -> Conversation:
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE_DAYS * 86400)
    except signing.BadSignature:
        raise InvalidRating(_("This link is not valid any more.")) from None
    conversation = Conversation.objects.filter(pk=data.get("c"), reference=data.get("r")).first()
    if conversation is None or conversation.status != Conversation.Status.SOLVED:
        raise InvalidRating(_("This link is not valid any more."))
    if Rating.objects.filter(conversation=conversation).exists():
        raise InvalidRating(_("This conversation has been rated already: thank you."))
    return conversation


def rate(token: str, *, score: int, comment: str = "") -> Rating:
    conversation = open_link(token)
    if score not in Rating.Score.values:
        raise InvalidRating(_("Choose one of the ratings."))
    comment = (comment or "").replace("\x00", "").strip()[:COMMENT_MAX]
    try:
        with transaction.atomic():
            return Rating.objects.create(
                conversation=conversation,
                score=score,
                comment=comment,
                agent_id=conversation.assignee_id,
                queue_id=conversation.queue_id,
            )
    except IntegrityError:  # the same link used twice at once: the first one counts
        raise InvalidRating(_("This conversation has been rated already: thank you.")) from None


@dataclass(frozen=True)
class Summary:
    name: str
    count: int
    average: float


def by_agent() -> list[Summary]:
    rows = (
        Rating.objects.values("agent__name")
        .annotate(n=Count("pk"), avg=Avg("score"))
        .order_by("agent__name")
    )
    return [Summary(r["agent__name"] or "—", r["n"], round(r["avg"], 2)) for r in rows]


def by_queue() -> list[Summary]:
    rows = (
        Rating.objects.values("queue__name")
        .annotate(n=Count("pk"), avg=Avg("score"))
        .order_by("queue__name")
    )
    return [Summary(r["queue__name"], r["n"], round(r["avg"], 2)) for r in rows]
