"""Mail to the support address in an IMAP mailbox Tidings polls (desk/imap.py), against a
real Dovecot started for each test (tests/imapserver.py): each message goes through the
one inbound entry point, is flagged or moved only once stored, and is never stored twice,
whatever stops a run half-way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tidings.celery import app
from tidings.desk import imap, tasks
from tidings.desk.models import Conversation, MailboxCursor, Message

EML = Path(__file__).parent / "eml"


def eml(name: str = "quoted_printable.eml") -> bytes:
    return (EML / name).read_bytes()


def test_new_mail_opens_conversations_and_is_flagged_seen_once_stored(
    dovecot, on_commit_runs, settings
):
    first = dovecot.deliver(eml())
    second = dovecot.deliver(eml("rfc2231_filename.eml"))
    settings.DESK_IMAP = dovecot.config  # the beat task's way: the settings
    assert imap.poll() == imap.Report(stored=2)
    assert Conversation.objects.count() == 2
    conversation = Conversation.objects.get(email="ada@example.org")
    assert "résumé" in conversation.messages.get().body  # the same parser as SMTP
    assert conversation.channel == "mail" and not conversation.sender_verified
    assert "\\Seen" in dovecot.flags()[first] and "\\Seen" in dovecot.flags()[second]
    # Nothing new: nothing read again.
    assert imap.poll() == imap.Report()
    third = dovecot.deliver(eml("reply_changed_subject.eml"))
    assert imap.poll().stored == 1
    assert "\\Seen" in dovecot.flags()[third]


def test_a_run_stopped_between_storing_and_flagging_stores_nothing_twice(
    dovecot, on_commit_runs, monkeypatch
):
    uid = dovecot.deliver(eml())

    def server_gone(*args: object) -> None:
        raise imap.MailboxError("connection lost")

    monkeypatch.setattr(imap, "_done", server_gone)
    with pytest.raises(imap.MailboxError):
        imap.poll(dovecot.config)
    assert Message.objects.count() == 1
    assert "\\Seen" not in dovecot.flags()[uid]  # stored, not yet flagged
    monkeypatch.undo()
    assert imap.poll(dovecot.config) == imap.Report(flagged_late=1)
    assert Message.objects.count() == 1
    assert "\\Seen" in dovecot.flags()[uid]


def test_a_renumbered_folder_is_read_again_and_the_message_id_keeps_it_once(
    dovecot, on_commit_runs
):
    dovecot.deliver(eml())
    assert imap.poll(dovecot.config).stored == 1
    # The server renumbered the folder (a restore, a migration): a new UIDVALIDITY.
    MailboxCursor.objects.update(uidvalidity=1)
    assert imap.poll(dovecot.config) == imap.Report(skipped=1)
    assert Message.objects.count() == 1


def test_stored_mail_is_moved_to_the_done_folder_when_one_is_named(dovecot, on_commit_runs):
    dovecot.deliver(eml())
    assert imap.poll({**dovecot.config, "done_folder": "Support done"}).stored == 1
    assert dovecot.flags("INBOX") == {}
    [flags] = dovecot.flags("Support done").values()
    assert "\\Seen" in flags


def test_unreadable_and_too_large_mail_is_flagged_and_left_and_blocks_nothing(
    dovecot, on_commit_runs, settings
):
    settings.DESK = {**settings.DESK, "message_max_bytes": 2000}
    malformed = dovecot.deliver(eml("malformed.eml"))
    large = dovecot.deliver(eml().replace(b"Hello,", b"Hello, " + b"x" * 3000 + b"\n"))
    fine = dovecot.deliver(eml("reply_changed_subject.eml"))
    assert imap.poll(dovecot.config) == imap.Report(stored=1, refused=2)
    flags = dovecot.flags()
    assert "\\Flagged" in flags[malformed] and "\\Seen" not in flags[malformed]
    assert "\\Flagged" in flags[large] and "\\Seen" not in flags[large]
    assert "\\Seen" in flags[fine]
    assert Conversation.objects.count() == 1
    assert imap.poll(dovecot.config) == imap.Report()  # refused once, not again and again


def test_signed_mail_read_by_imap_gets_the_same_verdict(dovecot, customer, sign, on_commit_runs):
    dovecot.deliver(sign(eml()))
    assert imap.poll(dovecot.config).stored == 1
    conversation = Conversation.objects.get()
    assert conversation.sender_verified and conversation.user == customer


def test_a_mailbox_that_cannot_be_read_is_a_clear_error_and_changes_nothing(
    dovecot, on_commit_runs
):
    dovecot.deliver(eml())
    with pytest.raises(imap.MailboxError, match="login refused"):
        imap.poll({**dovecot.config, "password": "guessed"})
    with pytest.raises(imap.MailboxError, match="in clear"):
        imap.poll({**dovecot.config, "host": "imap.example.net"})
    with pytest.raises(imap.MailboxError, match="SELECT Nowhere"):
        imap.poll({**dovecot.config, "folder": "Nowhere"})
    assert not Conversation.objects.exists()
    assert imap.poll(dovecot.config).stored == 1  # the lock was let go each time


def test_no_host_configured_reads_nothing(db, settings):
    settings.DESK_IMAP = {**settings.DESK_IMAP, "host": ""}
    assert imap.poll() == imap.Report()


def test_the_worker_reads_the_mailbox_every_minute(dovecot, on_commit_runs, settings):
    entry = app.conf.beat_schedule["poll-support-mailbox"]
    assert entry["task"] == tasks.poll_support_mailbox.name and entry["schedule"] == 60.0
    dovecot.deliver(eml())
    settings.DESK_IMAP = dovecot.config
    done = tasks.poll_support_mailbox()
    assert done == {"stored": 1, "skipped": 0, "refused": 0, "flagged_late": 0}


def test_an_unknown_tls_mode_stops_tidings_at_start():
    env = {**os.environ, "TIDINGS_DESK_IMAP_TLS": "plain"}
    started = subprocess.run(
        [sys.executable, "-c", "import tidings.settings"], env=env, capture_output=True, text=True
    )
    assert started.returncode != 0
    assert "TIDINGS_DESK_IMAP_TLS must be ssl, starttls or none, not 'plain'" in started.stderr


def test_a_message_that_fails_run_after_run_is_passed_over_in_the_end(
    dovecot, on_commit_runs, monkeypatch
):
    # A fault of the desk's own on one message (injected: no real message makes one).
    poisoned = dovecot.deliver(eml("rfc2231_filename.eml"))
    after = dovecot.deliver(eml())
    receive = imap.inbound.receive

    def failing(raw: bytes) -> imap.inbound.Outcome:
        if b"Content-Disposition" in raw:
            raise RuntimeError("a bug of the desk")
        return receive(raw)

    monkeypatch.setattr(imap.inbound, "receive", failing)
    for _run in range(imap.STUCK_RUNS - 1):
        with pytest.raises(RuntimeError):
            imap.poll(dovecot.config)
        assert not Conversation.objects.exists()  # the next message waits, in order
    assert imap.poll(dovecot.config) == imap.Report(stored=1, refused=1)
    flags = dovecot.flags()
    assert "\\Flagged" in flags[poisoned] and "\\Seen" not in flags[poisoned]
    assert "\\Seen" in flags[after]


def test_the_mailbox_is_read_over_tls_and_an_unknown_certificate_is_refused(
    dovecot_tls, on_commit_runs
):
    dovecot_tls.deliver(eml())
    dovecot_tls.deliver(eml("reply_changed_subject.eml"))
    trusting = {**dovecot_tls.config, "ca_file": str(dovecot_tls.ca_file)}
    # A certificate no CA of the system signed: refused before the password is sent.
    untrusted = {**trusting, "tls": "ssl", "port": dovecot_tls.ssl_port, "ca_file": ""}
    logins = dovecot_tls.log().count("Login: user=<support>")  # the test's own deliveries
    with pytest.raises(imap.MailboxError, match="CERTIFICATE_VERIFY_FAILED"):
        imap.poll(untrusted)
    with pytest.raises(imap.MailboxError, match="CERTIFICATE_VERIFY_FAILED"):
        imap.poll({**trusting, "tls": "starttls", "ca_file": ""})
    assert not Conversation.objects.exists()
    assert dovecot_tls.log().count("Login: user=<support>") == logins
    # Trusted (the operator's CA file): implicit TLS, and STARTTLS on the plain port.
    one = imap.poll({**trusting, "tls": "ssl", "port": dovecot_tls.ssl_port})
    assert one.stored == 2
    dovecot_tls.deliver(eml("rfc2231_filename.eml"))
    assert imap.poll({**trusting, "tls": "starttls"}).stored == 1
