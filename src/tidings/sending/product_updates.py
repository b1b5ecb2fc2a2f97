"""The operator's product-update emails to its customers (P5, P18): only users who left
"product-update emails" on in My Account (`accounts.mailability`, marketing), each at
most once (one ledger message per update and user, by key), and nobody who switched it
off before their message went (the postman checks again just before sending)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from tidings.accounts.mailability import users_q
from tidings.accounts.models import User
from tidings.core import baseurl
from tidings.core.mail import Kind, OutboundMessage, Purpose, post
from tidings.core.text import NUL_REFUSED, nul_at
from tidings.sending.models import OutboundMail, ProductUpdate
from tidings.staff import audit

MAX_SUBJECT = 300


class UpdateRejected(ValueError):
    """A product update that cannot be sent; the message says why."""


def _checked(subject: str, body: str) -> tuple[str, str]:
    subject, body = " ".join(subject.split()), body.strip()
    if not subject or not body:
        raise UpdateRejected(_("A product update needs a subject and a body."))
    if len(subject) > MAX_SUBJECT:
        raise UpdateRejected(_("A subject can have at most %(n)d characters.") % {"n": MAX_SUBJECT})
    if nul_at(subject) is not None or nul_at(body) is not None:
        raise UpdateRejected(str(NUL_REFUSED))
    return subject, body


def audience_size() -> int:
    """How many customer users would get an update now (who have not opted out)."""
    return User.objects.filter(users_q(Purpose.MARKETING)).count()


def preview(subject: str, body: str) -> tuple[str, str]:
    """The subject and the text exactly as each customer would get them."""
    subject, body = _checked(subject, body)
    return subject, update_text(body)


def send_product_update(subject: str, body: str, *, by: User | None = None) -> ProductUpdate:
    """Post a product update to every customer user who has not opted out; audited."""
    subject, body = _checked(subject, body)
    with transaction.atomic():
        update = ProductUpdate.objects.create(subject=subject, body=body)
        posted = post_update(update)
        audit.record(
            audit.AuditEvent.Action.CREATE,
            update,
            by=by,
            fields=["subject", "body"],
            reason=f"product update sent to {posted} customer users who had not opted out",
        )
    return update


def deliver(update_id: int) -> int:
    """Post the update again to its audience as it is now (a re-run, a user who opted
    in since): nobody gets it twice. Returns how many messages are new."""
    return post_update(ProductUpdate.objects.get(pk=update_id))


def update_text(body: str) -> str:
    """The body with the footer every product update ends with."""
    switch_off = baseurl.absolute(reverse("accounts:processing"))
    return (
        f"{body}\n\n--\nYou receive product updates from {settings.OPERATOR['name']} "
        f"because they are switched on in My Account. Switch them off: {switch_off}\n"
    )


def sent_count(update: ProductUpdate) -> int:
    return OutboundMail.objects.filter(key__startswith=f"product-update:{update.pk}:").count()


def post_update(update: ProductUpdate) -> int:
    """Post the update to its audience as it is now; posting it again adds nobody twice
    (each message's key names the update and the user). Returns how many are new."""
    text = update_text(update.body)
    posted = 0
    audience = User.objects.filter(users_q(Purpose.MARKETING)).order_by("pk")
    done = set(
        OutboundMail.objects.filter(key__startswith=f"product-update:{update.pk}:").values_list(
            "user_id", flat=True
        )
    )
    for user_id, email in audience.values_list("pk", "email"):
        if user_id in done:
            continue
        post(
            OutboundMessage(
                to=email,
                subject=update.subject,
                text=text,
                purpose=Purpose.MARKETING,
                kind=Kind.PRODUCT_UPDATE,
                user_id=user_id,
                key=f"product-update:{update.pk}:{user_id}",
            )
        )
        posted += 1
    return posted
