"""Product updates from the staff console (P5): written, previewed with the number of
customers who will get them, sent through the one pipeline only to customers who have
not opted out, audited; administrators only; a wrong form sends and stores nothing."""

from __future__ import annotations

import pytest

from tests.factories import StaffFactory, UserFactory
from tidings.accounts.models import User
from tidings.sending.models import OutboundMail, ProductUpdate
from tidings.staff.models import AuditEvent

PAGE = "/staff/product-updates/"


@pytest.fixture
def admin(db):  # type: ignore[no-untyped-def]
    return StaffFactory(email="admin@operator.example", staff_role=User.StaffRole.ADMIN)


@pytest.fixture
def customers(db):  # type: ignore[no-untyped-def]
    keen = UserFactory(email="keen@example.org")
    UserFactory(email="keen2@example.org")
    UserFactory(email="quiet@example.org", allow_product_updates=False)
    return keen


@pytest.mark.promise("P5")
def test_an_admin_previews_sees_the_audience_and_sends_to_those_who_did_not_opt_out(
    smtp_mail, console, admin, customers
):
    client = console(admin)
    page = client.get(PAGE).content.decode()
    assert "It goes to 2 customer users" in page
    form = {"subject": "What is new", "body": "Segments on engagement."}
    preview = client.post(PAGE, {**form, "action": "preview"}).content.decode()
    assert "Segments on engagement." in preview and "Switch them off:" in preview
    assert "Send to 2 customers" in preview
    assert not ProductUpdate.objects.exists() and not smtp_mail.messages  # only a preview
    response = client.post(PAGE, {**form, "action": "send"}, follow=True)
    assert "The update is on its way to 2 customers." in response.content.decode()
    update = ProductUpdate.objects.get()
    assert {m["X-Envelope-To"] for m in smtp_mail.messages} == {
        "keen@example.org",
        "keen2@example.org",
    }
    assert not smtp_mail.to("quiet@example.org")
    # Through the one pipeline: one ledger message per user, product-update kind.
    assert OutboundMail.objects.filter(kind="product_update").count() == 2
    event = AuditEvent.objects.get(target_type="sending.ProductUpdate", target_id=str(update.pk))
    assert event.actor_id == admin.pk and "sent to 2" in event.reason
    assert "What is new" in client.get(PAGE).content.decode()  # listed as sent


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"subject": "", "body": "b"}, "This field is required."),
        ({"subject": "s", "body": "  "}, "This field is required."),
        ({"subject": "x" * 301, "body": "b"}, "at most 300 characters"),
        ({"subject": "s", "body": "a\x00b"}, "Null characters are not allowed"),
    ],
)
def test_a_wrong_update_is_refused_and_nothing_is_sent(
    mailbox, console, admin, customers, form, message
):
    response = console(admin).post(PAGE, {**form, "action": "send"})
    assert response.status_code == 400 and message in response.content.decode()
    assert not ProductUpdate.objects.exists() and not mailbox
    assert not OutboundMail.objects.exists()


def test_only_administrators_write_product_updates(console, db, privacy_officer, customers):
    client = console(StaffFactory(email="agent@operator.example"))
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, {"subject": "s", "body": "b", "action": "send"}).status_code == 403
    assert console(privacy_officer).get(PAGE).status_code == 403
    assert not ProductUpdate.objects.exists()
