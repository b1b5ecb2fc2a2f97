"""The support address's IMAP mailbox, polled (`poll-support-mailbox`, every minute):
each new message goes to desk.inbound.receive, the one entry point the SMTP listener and
the providers' webhooks use, and only once it is stored is it flagged Seen (or moved to
TIDINGS_DESK_IMAP_DONE_FOLDER).

The standard library's imaplib is enough here (UID commands, MOVE, STARTTLS, timeouts),
so no client library joins the dependencies.

Nothing is stored twice: the folder's UIDVALIDITY and the highest UID stored are kept
(`MailboxCursor`) and advanced in the transaction that stores the message, so a crash
between storing and flagging leaves a message the next run only flags. Should the server
renumber the folder (a new UIDVALIDITY), every message is read again and the Message-ID
already stored makes each a duplicate. A message the desk refuses for good (too large,
unreadable) is flagged \\Flagged and left in place for a person to look at; another error
(the database away) stops the run before that message, which is read again next time,
up to STUCK_RUNS runs in a row: then it is flagged and passed over too, so that one
message cannot hold up the mailbox for good.
"""

from __future__ import annotations

import imaplib
import ipaddress
import logging
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from tidings.desk import inbound
from tidings.desk.models import MailboxCursor

log = logging.getLogger(__name__)

# Messages read in one run at most (the next run takes the rest).
BATCH = 200
TIMEOUT_SECONDS = 30
# Runs in a row a message may fail in (an error of the desk's, not the message's) before
# it is flagged on the server and passed over.
STUCK_RUNS = 5
LOCK = "desk:imap-poll"
_SIZE = re.compile(rb"UID (\d+) RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+) UID (\d+)")


class MailboxError(RuntimeError):
    """The mailbox could not be read (configuration, login, folder): nothing changed."""


@dataclass(frozen=True)
class Report:
    stored: int = 0  # opened or added to a conversation
    skipped: int = 0  # duplicates and dropped mail (loops, automatic mail answering nothing)
    refused: int = 0  # too large or unreadable: flagged on the server, left there
    flagged_late: int = 0  # stored by an earlier run that stopped before flagging them


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(answer: tuple[str, Any], doing: str) -> list[Any]:
    status, data = answer
    if status != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
        raise MailboxError(f"IMAP {doing}: {status} {detail}".strip())
    return data


@contextmanager
def _connect(config: dict[str, object]) -> Iterator[imaplib.IMAP4]:
    host, port, tls = str(config["host"]), int(str(config["port"])), str(config["tls"])
    if tls == "none" and not _is_loopback(host):
        raise MailboxError(
            f"TIDINGS_DESK_IMAP_TLS=none is for a server on this machine only, not {host}: "
            "the password would cross the network in clear"
        )
    # The system's CAs, or the operator's own (a server with a private CA's certificate).
    context = ssl.create_default_context(cafile=str(config.get("ca_file") or "") or None)
    try:
        if tls == "ssl":
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                host, port, ssl_context=context, timeout=TIMEOUT_SECONDS
            )
        else:
            client = imaplib.IMAP4(host, port, timeout=TIMEOUT_SECONDS)
            if tls == "starttls":
                client.starttls(context)
    except (OSError, imaplib.IMAP4.error) as error:  # ssl.SSLError is an OSError
        raise MailboxError(f"IMAP server {host}:{port} not reached: {error}") from None
    try:
        try:
            client.login(str(config["user"]), str(config["password"]))
        except imaplib.IMAP4.error as error:
            raise MailboxError(f"IMAP login refused for {config['user']}: {error}") from None
        yield client
    finally:
        with suppress(OSError, imaplib.IMAP4.error):
            client.logout()


def _uids(client: imaplib.IMAP4, *criteria: str) -> list[int]:
    data = _check(client.uid("SEARCH", *criteria), "SEARCH")
    first = data[0] if data and isinstance(data[0], bytes) else b""
    return sorted(int(n) for n in first.split())


def _sizes(client: imaplib.IMAP4, uids: list[int]) -> dict[int, int]:
    found: dict[int, int] = {}
    if not uids:
        return found
    data = _check(client.uid("FETCH", ",".join(map(str, uids)), "(RFC822.SIZE)"), "FETCH")
    for line in data:
        text = line[0] if isinstance(line, tuple) else line
        if not isinstance(text, bytes):
            continue
        match = _SIZE.search(text)
        if match:
            uid, size = (match[1], match[2]) if match[1] else (match[4], match[3])
            found[int(uid)] = int(size)
    return found


def _fetch(client: imaplib.IMAP4, uid: int) -> bytes | None:
    """The whole message, without setting Seen (BODY.PEEK): None when it is gone."""
    data = _check(client.uid("FETCH", str(uid), "(BODY.PEEK[])"), "FETCH")
    for part in data:
        if isinstance(part, tuple) and isinstance(part[1], bytes):
            return part[1]
    return None


def _done(client: imaplib.IMAP4, uid: int, done_folder: str) -> None:
    """The message is stored: flagged Seen, and moved to the done folder if one is named."""
    _check(client.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)"), "STORE")
    if not done_folder:
        return
    if "MOVE" in client.capabilities:
        _check(client.uid("MOVE", str(uid), _quote(done_folder)), "MOVE")
        return
    _check(client.uid("COPY", str(uid), _quote(done_folder)), "COPY")
    _check(client.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
    _check(client.expunge(), "EXPUNGE")


def _refused(client: imaplib.IMAP4, uid: int, why: str) -> None:
    log.warning("desk: IMAP message %s refused, left flagged on the server: %s", uid, why)
    _check(client.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Flagged)"), "STORE")


def _advance(cursor: MailboxCursor, uid: int) -> None:
    cursor.last_uid = uid
    cursor.save(update_fields=["last_uid", "updated_at"])


def _stuck(cursor: MailboxCursor, uid: int) -> bool:
    """Count one more failed run on this message: True when it is to be passed over (it
    failed STUCK_RUNS runs in a row), so that one message cannot hold up the mailbox."""
    cursor.stuck_runs = cursor.stuck_runs + 1 if cursor.stuck_uid == uid else 1
    cursor.stuck_uid = uid
    cursor.save(update_fields=["stuck_uid", "stuck_runs", "updated_at"])
    return cursor.stuck_runs >= STUCK_RUNS


def mailbox_name(config: dict[str, object]) -> str:
    return f"{config['user']}@{config['host']}:{config['port']}/{config['folder']}"[:400]


def poll(config: dict[str, object] | None = None) -> Report:
    """Read the new messages of the support mailbox once. Raises MailboxError when the
    mailbox cannot be read at all; returns what became of its messages."""
    config = config if config is not None else settings.DESK_IMAP
    if not config.get("host"):
        return Report()
    # One poller at a time (beat may start a run while the last one still reads).
    if not cache.add(LOCK, 1, timeout=600):
        log.info("desk: the support mailbox is being read already")
        return Report()
    try:
        return _poll(config)
    finally:
        cache.delete(LOCK)


def _poll(config: dict[str, object]) -> Report:
    stored = skipped = refused = late = 0
    folder, done_folder = str(config["folder"]), str(config.get("done_folder") or "")
    limit = settings.DESK["message_max_bytes"]
    with _connect(config) as client:
        _check(client.select(_quote(folder)), f"SELECT {folder}")
        _typ, validity_data = client.response("UIDVALIDITY")
        first = validity_data[0] if validity_data else None
        validity = int(first) if isinstance(first, bytes) and first.isdigit() else 0
        if done_folder:
            client.create(_quote(done_folder))  # "already exists" is fine
        cursor, _created = MailboxCursor.objects.get_or_create(mailbox=mailbox_name(config))
        if cursor.uidvalidity != validity:
            if cursor.uidvalidity:
                log.warning("desk: the support mailbox's UIDVALIDITY changed: reading it again")
            cursor.uidvalidity, cursor.last_uid = validity, 0
            cursor.save(update_fields=["uidvalidity", "last_uid", "updated_at"])
        if cursor.last_uid:
            # Stored by an earlier run that stopped before flagging them.
            pending = ["UNSEEN"] if not done_folder else []
            for uid in _uids(client, "UID", f"1:{cursor.last_uid}", *pending, "UNFLAGGED"):
                if uid <= cursor.last_uid:
                    _done(client, uid, done_folder)
                    late += 1
        new = [u for u in _uids(client, "UID", f"{cursor.last_uid + 1}:*") if u > cursor.last_uid]
        new = new[:BATCH]
        sizes = _sizes(client, new)
        for uid in new:
            if sizes.get(uid, 0) > limit:
                _advance(cursor, uid)
                _refused(client, uid, f"larger than {limit} bytes")
                refused += 1
                continue
            raw = _fetch(client, uid)
            if raw is None:  # expunged meanwhile
                _advance(cursor, uid)
                continue
            if len(raw) > limit:  # a server that did not tell its size
                _advance(cursor, uid)
                _refused(client, uid, f"larger than {limit} bytes")
                refused += 1
                continue
            try:
                with transaction.atomic():
                    outcome = inbound.receive(raw)
                    _advance(cursor, uid)
            except inbound.Malformed as error:
                _advance(cursor, uid)
                _refused(client, uid, str(error))
                refused += 1
                continue
            except Exception as error:
                if not _stuck(cursor, uid):
                    raise  # tried again next run, and the messages after it wait
                _advance(cursor, uid)
                _refused(client, uid, f"failed {STUCK_RUNS} runs in a row: {error!r}")
                refused += 1
                continue
            if outcome.action in ("opened", "added"):
                stored += 1
            else:
                skipped += 1
            _done(client, uid, done_folder)
    return Report(stored=stored, skipped=skipped, refused=refused, flagged_late=late)
