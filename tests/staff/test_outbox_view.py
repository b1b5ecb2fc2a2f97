"""The staff outbox shows a message as it went: its headers, its text part, and its HTML
in a sandboxed frame whose own policy runs no script and loads nothing remote; the
frame is behind the same reason and audit as the page."""

from __future__ import annotations

import pytest

from tidings.core.mail import Kind, OutboundMessage, Purpose, post
from tidings.outbox.models import OutboxMessage
from tidings.staff.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_commit_runs")]

HTML = (
    '<html><body><p>Hello <strong>Ada</strong></p><script>alert("x")</script>'
    '<img src="https://tracker.example/pixel.gif" alt=""></body></html>'
)


@pytest.fixture
def message(settings) -> OutboxMessage:  # type: ignore[no-untyped-def]
    settings.EMAIL_DELIVERY = "outbox"
    post(
        OutboundMessage(
            to="ada@example.org", subject="Your details were changed",
            text="Hello Ada,\nyour phone number was changed.", html=HTML,
            purpose=Purpose.SERVICE, kind=Kind.NOTICE,
        )
    )  # fmt: skip
    return OutboxMessage.objects.get()


def test_a_message_shows_its_headers_text_and_html_frame(console, operator_admin, message):
    client = console(operator_admin)
    page = client.get(f"/staff/admin/outbox/outboxmessage/{message.pk}/change/")
    text = page.content.decode()
    assert "Subject: Your details were changed" in text and "To: ada@example.org" in text
    assert "your phone number was changed." in text
    frame = f"/staff/admin/outbox/outboxmessage/{message.pk}/html/"
    assert f'<iframe class="outbox-html" sandbox="" src="{frame}"' in text

    html = client.get(frame)
    assert html.status_code == 200 and b"Hello <strong>Ada</strong>" in html.content
    policy = html["Content-Security-Policy"]
    # No script, no remote image (a pixel would tell the sender staff read it), and
    # framed by the console only.
    assert policy.startswith("sandbox;") and "script-src" not in policy
    assert "default-src 'none'" in policy and "img-src data:;" in policy
    assert "frame-ancestors 'self'" in policy and html["X-Frame-Options"] == "SAMEORIGIN"
    reads = AuditEvent.objects.filter(
        target_type="outbox.OutboxMessage", target_id=str(message.pk), action="read"
    )
    assert reads.count() == 2  # the page, then its frame


def test_the_frame_is_refused_to_roles_without_the_outbox(console, staff, message):
    frame = f"/staff/admin/outbox/outboxmessage/{message.pk}/html/"
    assert console(staff).get(frame).status_code == 403


def test_the_frame_without_a_stated_reason_asks_for_one(console, operator_admin, message):
    client = console(operator_admin, reason=None)
    response = client.get(f"/staff/admin/outbox/outboxmessage/{message.pk}/html/")
    assert response.status_code == 302 and "/staff/admin/reason/" in response["Location"]
    assert not AuditEvent.objects.filter(target_type="outbox.OutboxMessage").exists()


def test_the_staff_home_links_the_privacy_office_for_those_who_may_open_it(
    console, privacy_officer
):
    assert b'href="/staff/privacy-office/"' in console(privacy_officer).get("/staff/admin/").content


def test_the_staff_home_hides_the_privacy_office_from_other_roles(console, billing_staff):
    assert b"/staff/privacy-office/" not in console(billing_staff).get("/staff/admin/").content
