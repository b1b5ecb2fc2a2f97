"""The operator's product-update emails to its customers (P5, P18): only users who left
"product-update emails" on in My Account, each at most once, and nobody who switched
it off before their message went."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from tidings.accounts.models import Account, User
from tidings.core.mail import deliver_now
from tidings.sending.models import ProductUpdate, ProductUpdateDelivery

P = ProductUpdateDelivery.Status


def _audience() -> object:
    return User.objects.filter(
        account__isnull=False,
        account__status=Account.Status.ACTIVE,
        is_active=True,
        email_confirmed_at__isnull=False,
        allow_product_updates=True,
    )


def send_product_update(subject: str, body: str) -> ProductUpdate:
    """Queue a product update to every customer user who has not opted out."""
    from tidings.sending.tasks import send_product_update as task

    subject, body = subject.strip(), body.strip()
    if not subject or not body:
        raise ValueError("A product update needs a subject and a body.")
    with transaction.atomic():
        update = ProductUpdate.objects.create(subject=subject[:300], body=body)
        users = User.objects.filter(pk__in=_audience().values("pk"))  # type: ignore[attr-defined]
        ProductUpdateDelivery.objects.bulk_create(
            [ProductUpdateDelivery(update=update, user=u) for u in users.only("pk")],
            ignore_conflicts=True,
            batch_size=1000,
        )
        transaction.on_commit(lambda: task.delay(update.pk))
    return update


def deliver(update_id: int) -> int:
    """Send the queued deliveries of one update, each claimed (and committed) before it
    is sent; a user who opted out since is skipped. Returns how many were sent."""
    update = ProductUpdate.objects.get(pk=update_id)
    switch_off = settings.BASE_URL + reverse("accounts:processing")
    sent = 0
    while True:
        row = (
            ProductUpdateDelivery.objects.filter(update=update, status=P.QUEUED)
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
        if row is None:
            return sent
        if not ProductUpdateDelivery.objects.filter(pk=row, status=P.QUEUED).update(
            status=P.SENDING, claimed_at=timezone.now()
        ):
            continue  # another worker took it
        delivery = ProductUpdateDelivery.objects.select_related("user").get(pk=row)
        user = delivery.user
        if not _audience().filter(pk=user.pk).exists():  # type: ignore[attr-defined]
            ProductUpdateDelivery.objects.filter(pk=row).update(status=P.SKIPPED)
            continue
        text = (
            f"{update.body}\n\n--\nYou receive product updates from {settings.OPERATOR['name']} "
            f"because they are switched on in My Account. Switch them off: {switch_off}\n"
        )
        try:
            deliver_now(update.subject, text, [user.email])
        except OSError:
            ProductUpdateDelivery.objects.filter(pk=row).update(status=P.FAILED)
            continue
        ProductUpdateDelivery.objects.filter(pk=row).update(status=P.SENT, sent_at=timezone.now())
        sent += 1
