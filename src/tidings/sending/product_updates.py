"""The operator's product-update emails to its customers (P5, P18): only users who left
"product-update emails" on in My Account (`accounts.mailability`, marketing), each at
most once (one ledger message per update and user, by key), and nobody who switched it
off before their message went (the postman checks again just before sending)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from tidings.accounts.mailability import users_q
from tidings.accounts.models import User
from tidings.core import baseurl
from tidings.core.mail import Kind, OutboundMessage, Purpose, post
from tidings.sending.models import OutboundMail, ProductUpdate


def send_product_update(subject: str, body: str) -> ProductUpdate:
    """Post a product update to every customer user who has not opted out."""
    subject, body = subject.strip(), body.strip()
    if not subject or not body:
        raise ValueError("A product update needs a subject and a body.")
    with transaction.atomic():
        update = ProductUpdate.objects.create(subject=subject[:300], body=body)
        post_update(update)
    return update


def deliver(update_id: int) -> int:
    """Post the update again to its audience as it is now (a re-run, a user who opted
    in since): nobody gets it twice. Returns how many messages are new."""
    return post_update(ProductUpdate.objects.get(pk=update_id))


def post_update(update: ProductUpdate) -> int:
    """Post the update to its audience as it is now; posting it again adds nobody twice
    (each message's key names the update and the user). Returns how many are new."""
    switch_off = baseurl.absolute(reverse("accounts:processing"))
    text = (
        f"{update.body}\n\n--\nYou receive product updates from {settings.OPERATOR['name']} "
        f"because they are switched on in My Account. Switch them off: {switch_off}\n"
    )
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
