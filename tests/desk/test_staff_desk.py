"""The staff's desk, end to end: a customer writes by mail and by the form, an agent
answers from the desk with the history at hand, follows up, changes the customer's phone
at their request and solves the conversation (P3, P6, P7, P32)."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.desk.conftest import verified
from tests.staff.conftest import REASON
from tidings.accounts import services as accounts
from tidings.desk import followups, inbound, services
from tidings.desk.attachments import Accepted
from tidings.desk.models import CannedAnswer, Conversation, FollowUp, Message
from tidings.sending.models import OutboundMail
from tidings.staff.models import AuditEvent

EML = Path(__file__).parent / "eml"
# Mail "from the customer" here is verified by our MTA's Authentication-Results.
pytestmark = pytest.mark.usefixtures("trusted_mta")


def page(pk: int) -> str:
    return f"/staff/desk/{pk}/"


def write_by_mail(customer, n: int = 1) -> Conversation:  # type: ignore[no-untyped-def]
    raw = (EML / "quoted_printable.eml").read_bytes().replace(b"<qp-1@", f"<qp-{n}@".encode())
    raw = raw.replace(b"ada@example.org", customer.email.encode())
    return inbound.receive(verified(raw)).conversation


@pytest.mark.promise("P3", "P6")
def test_an_agent_answers_from_the_desk_and_the_customer_replies_in_the_same_thread(
    console, staff, customer, mailbox
):
    client = console(staff)
    earlier = write_by_mail(customer, 1)
    conversation = write_by_mail(customer, 2)
    queue = client.get("/staff/desk/")
    assert queue.status_code == 200 and f"/staff/desk/{conversation.pk}/" in queue.text
    shown = client.get(page(conversation.pk))
    # The history at hand: the whole thread and the customer's other conversations.
    assert "résumé list stops at 1000 rows" in shown.text
    assert f"/staff/desk/{earlier.pk}/" in shown.text
    client.post(page(conversation.pk), {"action": "note", "body": "Known limit, see #12."})
    response = client.post(
        page(conversation.pk), {"action": "reply", "body": "This is a limit of the export."}
    )
    assert response.status_code == 302
    answer = mailbox[-1]
    assert answer.to == [customer.email]
    assert "This is a limit of the export." in answer.body
    assert "Known limit" not in answer.body
    assert answer["Auto-Submitted"] is None  # a person wrote it (RFC 3834)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.WAITING
    assert conversation.assignee == staff
    # The customer answers by mail, with a new subject: the same conversation.
    reply = (EML / "reply_changed_subject.eml").read_text()
    reply = reply.replace("{IN_REPLY_TO}", answer["Message-ID"]).replace("{REFERENCES}", "")
    reply = reply.replace("ada@example.org", customer.email)
    assert inbound.receive(verified(reply.encode())).conversation == conversation
    # The customer's own page shows the answer but never the internal note.
    client.force_login(customer)
    mine = client.get(f"/support/{conversation.pk}/")
    assert "This is a limit of the export." in mine.text and "Known limit" not in mine.text


def test_the_desk_asks_for_a_reason_and_audits_what_it_shows(console, staff, customer, db):
    conversation = write_by_mail(customer)
    client = console(staff, reason=None)
    assert client.get("/staff/desk/").status_code == 302  # to the reason form
    client = console(staff)
    client.get("/staff/desk/")
    client.get(page(conversation.pk))
    listed = AuditEvent.objects.filter(action="list", target_type="desk.Conversation")
    read = AuditEvent.objects.get(action="read", target_type="desk.Conversation")
    assert listed.get().reason == REASON and read.reason == REASON


def test_a_role_without_the_desk_gets_no_desk(console, billing_staff, customer, db):
    conversation = write_by_mail(customer)
    client = console(billing_staff)
    assert client.get("/staff/desk/").status_code == 403
    assert client.get(page(conversation.pk)).status_code == 403


@pytest.mark.promise("P7", "P19", "P32")
def test_an_agent_changes_the_customers_phone_at_their_request(console, staff, customer, mailbox):
    conversation = write_by_mail(customer)
    client = console(staff)
    hidden = client.get(page(conversation.pk))
    assert customer.phone not in hidden.text  # not before a reason is given
    shown = client.post(
        page(conversation.pk), {"action": "show_customer", "reason": "customer asks for a change"}
    )
    assert customer.phone in shown.text
    read = AuditEvent.objects.get(action="read", target_type="accounts.User")
    assert f"support conversation #{conversation.pk}" in read.reason
    response = client.post(
        page(conversation.pk),
        {
            "action": "change_customer",
            "name": customer.name,
            "phone": "+33 1 23 45 67 89",
            "postal_address": "",
        },
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.phone == "+33 1 23 45 67 89"
    change = AuditEvent.objects.get(action="update", target_type="accounts.User")
    assert change.fields == ["phone"]
    assert f"support conversation #{conversation.pk}" in change.reason
    told = [m for m in mailbox if m.to == [customer.email] and "Phone" in m.body]
    assert told, "the customer gets the change mail (P19)"
    assert conversation.messages.filter(direction=Message.Direction.NOTE).exists()


def test_bad_customer_data_changes_nothing(console, staff, customer, on_commit_runs):
    conversation = write_by_mail(customer)
    client = console(staff)
    response = client.post(
        page(conversation.pk),
        {"action": "change_customer", "name": "", "phone": "1", "postal_address": ""},
    )
    assert response.status_code == 400
    customer.refresh_from_db()
    assert customer.phone == "+44 20 7946 0018"


def test_canned_answers_fill_in_their_variables(console, staff, customer, on_commit_runs):
    CannedAnswer.objects.create(
        title="Hello",
        body="Hello {{ customer_name }}, {{ agent_name }} here about #{{ conversation_number }}."
        " {{ unknown }}",
    )
    conversation = write_by_mail(customer)
    client = console(staff)
    canned = CannedAnswer.objects.get()
    shown = client.get(page(conversation.pk), {"canned": canned.pk})
    assert (
        f"Hello Ada Lovelace, Support Agent here about #{conversation.pk}. {{{{ unknown }}}}"
        in shown.text
    )


def test_support_staff_find_the_desk_and_save_canned_answers_from_the_console(
    console, staff, billing_staff, customer, db
):
    client = console(staff)
    home = client.get("/staff/admin/")
    assert 'href="/staff/desk/"' in home.text
    assert client.get("/staff/admin/desk/cannedanswer/").status_code == 200
    added = client.post(
        "/staff/admin/desk/cannedanswer/add/",
        {"title": "Draft", "body": "Hello {{ customer_name }}, about #{{ conversation_number }}."},
    )
    assert added.status_code == 302
    canned = CannedAnswer.objects.get()
    conversation = write_by_mail(customer)
    shown = client.get(page(conversation.pk), {"canned": canned.pk})
    assert f"Hello Ada Lovelace, about #{conversation.pk}." in shown.text
    # A role without the desk sees neither the link nor the saved answers.
    other = console(billing_staff)
    assert 'href="/staff/desk/"' not in other.get("/staff/admin/").text
    assert other.get("/staff/admin/desk/cannedanswer/").status_code in (403, 404)


def test_each_label_of_the_conversation_page_names_its_own_field(console, staff, customer, db):
    conversation = write_by_mail(customer)
    shown = console(staff).get(page(conversation.pk)).text
    ids = re.findall(r'\sid="([^"]+)"', shown)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    # The follow-up's "Message" is the follow-up's text, not the answer's.
    assert re.search(r'<label for="id_body">Message:</label>', shown)
    assert re.search(r'<textarea[^>]*name="body"[^>]*id="id_body"', shown)
    assert '<label for="id_answer">' in shown and 'id="id_answer" name="body"' in shown


@pytest.mark.promise("P6", "P18")
def test_a_follow_up_goes_once_when_due_and_not_after_switching_off(
    console, staff, customer, mailbox
):
    conversation = write_by_mail(customer)
    client = console(staff)
    due = timezone.localtime() + timedelta(days=3)
    response = client.post(
        page(conversation.pk),
        {"action": "followup", "due_at": due.strftime("%Y-%m-%d %H:%M"), "body": "All well?"},
    )
    assert response.status_code == 302
    followup = FollowUp.objects.get()
    assert followups.send_due() == 0  # not due yet
    later = timezone.now() + timedelta(days=4)
    assert followups.send_due(later) == 1
    assert followups.send_due(later) == 0  # idempotent
    assert [m.body.startswith("All well?") for m in mailbox if m.to == [customer.email]][-1]
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.SENT
    assert [m.body for m in conversation.messages.filter(direction="out")] == ["All well?"]

    # A second one, then the customer switches follow-ups off in My Account: cancelled.
    second = followups.schedule(
        conversation, by=staff, due_at=timezone.now() + timedelta(days=1), body="Again?"
    )
    accounts.set_processing(customer, by=customer, allow_support_followups=False)
    second.refresh_from_db()
    assert second.status == FollowUp.Status.CANCELLED
    sent_before = OutboundMail.objects.filter(kind="support").count()
    assert followups.send_due(timezone.now() + timedelta(days=2)) == 0
    assert OutboundMail.objects.filter(kind="support").count() == sent_before
    with pytest.raises(followups.DeskError):
        followups.schedule(
            conversation, by=staff, due_at=timezone.now() + timedelta(days=1), body="x"
        )


def test_a_restricted_customer_gets_no_follow_up(staff, customer, on_commit_runs):
    conversation = write_by_mail(customer)
    followup = followups.schedule(
        conversation, by=staff, due_at=timezone.now() + timedelta(hours=1), body="Hello?"
    )
    accounts.restrict_account(customer.account, by=staff, reason="dispute")
    assert followups.send_due(timezone.now() + timedelta(hours=2)) == 0
    followup.refresh_from_db()
    assert (followup.status, followup.note) == (FollowUp.Status.CANCELLED, "restricted")


@pytest.mark.promise("P18")
def test_a_follow_up_to_a_closed_account_is_skipped_with_the_reason(
    staff, customer, on_commit_runs
):
    conversation = write_by_mail(customer)
    followup = followups.schedule(
        conversation, by=staff, due_at=timezone.now() + timedelta(hours=1), body="Hello?"
    )
    accounts.close_account(customer.account, by=customer)
    assert followups.send_due(timezone.now() + timedelta(hours=2)) == 0
    followup.refresh_from_db()
    assert (followup.status, followup.note) == (FollowUp.Status.CANCELLED, "account closed")
    assert not OutboundMail.objects.filter(kind="support").exists()
    assert not conversation.messages.filter(direction=Message.Direction.OUT).exists()


def test_solving_and_a_reply_reopens(console, staff, customer, on_commit_runs):
    conversation = write_by_mail(customer)
    client = console(staff)
    client.post(page(conversation.pk), {"action": "status", "status": "solved"})
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.SOLVED and conversation.solved_at
    client.force_login(customer)
    client.post(f"/support/{conversation.pk}/", {"body": "One more question"})
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.OPEN


@pytest.mark.promise("P12")
def test_solving_again_keeps_the_first_solved_at_and_asks_for_one_rating(staff, customer, mailbox):
    conversation = write_by_mail(customer)
    # A second agent's page, loaded while the conversation was still open.
    stale = Conversation.objects.get(pk=conversation.pk)
    solved_at = timezone.now()
    with time_machine.travel(solved_at, tick=False):
        services.set_status(conversation, status=Conversation.Status.SOLVED, by=staff)
    with time_machine.travel(solved_at + timedelta(days=3), tick=False):
        services.set_status(stale, status=Conversation.Status.SOLVED, by=staff)
        services.set_status(
            Conversation.objects.get(pk=conversation.pk),
            status=Conversation.Status.SOLVED,
            by=staff,
        )
    conversation.refresh_from_db()
    # The retention clock (P12) runs from the first solving, not from each click.
    assert conversation.solved_at == solved_at
    assert len([m for m in mailbox if "How did we do?" in m.subject]) == 1


def waiting_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


@pytest.mark.postgres  # two agents at once: a row lock
def test_an_agent_solving_at_the_same_moment_waits_and_decides_from_the_first(
    transactional_db, staff, customer
):
    conversation = write_by_mail(customer)
    stale = Conversation.objects.get(pk=conversation.pk)  # the second agent's page
    second: list[int] = []  # the second agent's backend pid

    def second_agent() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                second.append(cursor.fetchone()[0])
            services.set_status(stale, status=Conversation.Status.SOLVED, by=staff)
        finally:
            connection.close()

    with transaction.atomic():  # the first agent solves; not committed yet
        services.set_status(conversation, status=Conversation.Status.SOLVED, by=staff)
        first_solved_at = Conversation.objects.get(pk=conversation.pk).solved_at
        thread = threading.Thread(target=second_agent)
        thread.start()
        deadline = time.monotonic() + 30
        while not (second and waiting_for_a_lock(second[0])):
            assert time.monotonic() < deadline, "the second agent never waited for the row"
    thread.join(timeout=30)
    conversation.refresh_from_db()
    assert conversation.solved_at == first_solved_at
    assert OutboundMail.objects.filter(subject__contains="How did we do?").count() == 1


@pytest.mark.promise("P7")
def test_staff_download_an_attachment_only_with_a_reason_and_audited(
    console, staff, customer, on_commit_runs
):
    raw = (EML / "rfc2231_filename.eml").read_bytes()
    conversation = inbound.receive(raw).conversation
    attachment = conversation.messages.get().attachments.get()
    url = f"/support/files/{attachment.pk}/"
    assert console(staff, reason=None).get(url).status_code == 404
    client = console(staff)
    response = client.get(url)
    assert response.status_code == 200 and response["X-Content-Type-Options"] == "nosniff"
    read = AuditEvent.objects.get(action="read", target_type="desk.Attachment")
    assert read.reason == REASON


def attachment_bytes_read(client, url: str) -> bool:  # type: ignore[no-untyped-def]
    """Show the page; whether any query read an attachment's (encrypted) bytes."""
    with CaptureQueriesContext(connection) as queries:
        shown = client.get(url)
    assert shown.status_code == 200 and "scan.pdf" in shown.text
    listed = [q["sql"] for q in queries if 'FROM "desk_attachment"' in q["sql"]]
    assert listed, "the attachments are listed"
    return any('"desk_attachment"."data"' in sql for sql in listed)


def test_thread_pages_list_attachments_without_reading_their_bytes(console, staff, customer, db):
    # A page that loaded the bytes would decrypt every file of the thread to show its
    # name; they are read only when one is downloaded.
    scan = b"%PDF-1.4 " + b"x" * 1_000_000
    conversation = services.open_conversation(
        user=customer, body="The scan", attachments=[Accepted("scan.pdf", "application/pdf", scan)]
    )
    client = console(staff)
    assert not attachment_bytes_read(client, page(conversation.pk))
    client.force_login(customer)
    assert not attachment_bytes_read(client, f"/support/{conversation.pk}/")
    attachment = conversation.messages.get().attachments.get()
    download = client.get(f"/support/files/{attachment.pk}/")
    assert download.status_code == 200 and download.content == scan
