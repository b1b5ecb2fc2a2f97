"""Getting bytes to a relay: SMTP connections of our own (smtplib, SMTP pipelining),
the local mailbox of the embedded default, and the test suite's memory.

The outcome of one SMTP transaction is one of four: accepted (the server's 250 after
DATA), a temporary failure (4xx, dropped connection before the message was complete:
retry later), a permanent failure (5xx: never retry), or *ambiguous*: the connection
broke after the whole message was handed over but before the server answered. The
message may have been accepted, so it is not retried (a duplicate is worse than a miss).

A permanent failure says whom it is about: the recipient (RCPT refused, or the message
refused after DATA: a hard bounce) or the sender (the login, MAIL FROM: the relay
refuses the customer, not the contact). An address the relay cannot carry (non-ASCII,
and no SMTPUTF8 offered) fails for that recipient alone, without blaming them.

This module (with `backend` and `relays`) is the only place that speaks SMTP.
"""

from __future__ import annotations

import email
import email.policy
import logging
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.core import mail

from tidings.core import netguard
from tidings.outbox.services import store
from tidings.sending.message import dot_stuff, undo_dot_stuffing
from tidings.sending.models import Relay
from tidings.sending.relays import RelayConfig

log = logging.getLogger(__name__)

# A connection unused for this long is closed rather than reused.
IDLE_SECONDS = 50


class SendFailure(Exception):
    """`stage` is where it happened: relay (its address is refused), connect, auth,
    mail, rcpt, data or address."""

    def __init__(self, message: str, code: int = 0, *, stage: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.stage = stage


class TemporaryFailure(SendFailure):
    pass


class PermanentFailure(SendFailure):
    """5xx, or an address this relay cannot carry. `recipient` is True when it is about
    the recipient (a hard bounce), False when the relay refused us (login, sender) or
    the address needs what the relay does not offer (then the contact is not blamed)."""

    def __init__(
        self, message: str, code: int = 0, *, recipient: bool = True, stage: str = ""
    ) -> None:
        super().__init__(message, code, stage=stage)
        self.recipient = recipient


class Ambiguous(SendFailure):
    pass


def _fail(stage: str, code: int, reply: bytes, *, recipient: bool) -> SendFailure:
    text = f"{stage.upper()}: {code} {reply.decode(errors='replace')}"[:500]
    if 400 <= code < 500:
        return TemporaryFailure(text, code, stage=stage)
    return PermanentFailure(text, code, recipient=recipient, stage=stage)


class Transport(Protocol):
    relay_id: int | None
    # True where a copy of each message stays on this machine (the local outbox).
    keeps_copy: bool

    def send(self, sender: str, recipient: str, data: bytes, *, stuffed: bool = False) -> str: ...

    def close(self) -> None: ...


class _Replies:
    """The server's replies read straight from the socket: on the hot path, a buffer
    and a split instead of smtplib's line-by-line file reads (a third of the CPU of
    sending one message). Used only where smtplib reads nothing itself (the pipelined
    transaction), so the two never share bytes."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.buffer = b""

    def read(self) -> tuple[int, bytes]:
        """One reply: its code and its text (the lines of a multi-line reply joined)."""
        texts = []
        while True:
            end = self.buffer.find(b"\n")
            while end < 0:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
                self.buffer += chunk
                end = self.buffer.find(b"\n")
            line, self.buffer = self.buffer[: end + 1], self.buffer[end + 1 :]
            texts.append(line[4:].strip())
            if line[3:4] != b"-":
                try:
                    return int(line[:3]), b"\n".join(texts)
                except ValueError:
                    raise smtplib.SMTPServerDisconnected("the server's reply is garbled") from None


class _Opener(Protocol):
    def __call__(self, host: str, port: int, timeout: float | None) -> socket.socket: ...


class _SMTP(smtplib.SMTP):
    """smtplib's client, its socket opened by `open` (the guard's checked address)."""

    def __init__(self, host: str, port: int, *, open: _Opener, timeout: float) -> None:
        self._open = open
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float | None) -> socket.socket:
        return self._open(host, port, timeout)


class _SMTP_SSL(smtplib.SMTP_SSL):
    def __init__(
        self, host: str, port: int, *, open: _Opener, timeout: float, context: ssl.SSLContext
    ) -> None:
        self._open = open
        super().__init__(host, port, timeout=timeout, context=context)

    def _get_socket(self, host: str, port: int, timeout: float | None) -> socket.socket:
        # The certificate is verified against the name given (self._host), not the address.
        name: str = self._host  # type: ignore[attr-defined]
        return self.context.wrap_socket(self._open(host, port, timeout), server_hostname=name)


class SMTPTransport:
    """One SMTP connection to a relay, opened lazily, reused for the messages of one
    holder of a connection slot, and closed when the slot is given back."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.relay_id: int | None = config.id
        self.keeps_copy = False
        self._smtp: smtplib.SMTP | None = None
        self.last_used = 0.0

    def _open(self, host: str, port: int, timeout: float | None) -> socket.socket:
        """The TCP connection: to a customer's relay only at an address the guard
        checked (core.netguard); within the connect timeout either way."""
        connect_timeout = settings.SENDING["smtp_connect_timeout"]
        if self.config.guarded:
            return netguard.connect(
                host,
                port,
                allow=settings.ALLOWED_RELAY_HOSTS,
                connect_timeout=connect_timeout,
                timeout=timeout,
            )
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        sock.settimeout(timeout)
        return sock

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        timeout = settings.SENDING["smtp_timeout"]
        try:
            smtp: smtplib.SMTP
            if c.security == Relay.Security.TLS:
                smtp = _SMTP_SSL(
                    c.host,
                    c.port,
                    open=self._open,
                    timeout=timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = _SMTP(c.host, c.port, open=self._open, timeout=timeout)
                if c.security == Relay.Security.STARTTLS:
                    smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo_or_helo_if_needed()
            if c.username:
                smtp.login(c.username, c.password)
        except smtplib.SMTPAuthenticationError as error:
            said = error.smtp_error
            words = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
            raise PermanentFailure(
                f"the relay refused the login: {error.smtp_code} {words}",
                error.smtp_code,
                recipient=False,
                stage="auth",
            ) from None
        except netguard.ForbiddenHost as error:
            # Stage "relay": the customer must mend the relay; a campaign pauses.
            raise PermanentFailure(
                f"the relay's address is refused: {error}", recipient=False, stage="relay"
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise PermanentFailure(
                "the relay offers no login (AUTH), yet a username is set for it",
                recipient=False,
                stage="auth",
            ) from None
        except (OSError, smtplib.SMTPException) as error:
            raise TemporaryFailure(
                f"cannot connect to {c.host}:{c.port}: {error}", stage="connect"
            ) from None
        return smtp

    def send(self, sender: str, recipient: str, data: bytes, *, stuffed: bool = False) -> str:
        """Hand one message to the relay; the server's acceptance line, or an exception.
        `stuffed`: `data` is dot-stuffed already (a campaign's, stuffed piece by piece)."""
        if self._smtp is not None and time.monotonic() - self.last_used > IDLE_SECONDS:
            self.close()
        if self._smtp is None:
            self._smtp = self._connect()
            assert self._smtp.sock is not None
            self._replies = _Replies(self._smtp.sock)
        smtp = self._smtp
        options = ""
        if not (sender.isascii() and recipient.isascii()):
            if not smtp.has_extn("smtputf8"):
                raise PermanentFailure(
                    f"{recipient} is an international address and this relay does not offer "
                    "SMTPUTF8: choose a relay that does to reach it",
                    recipient=False,
                    stage="address",
                )
            options = " SMTPUTF8"
            smtp.command_encoding = "utf-8"
        pipelined = smtp.has_extn("pipelining")
        try:
            if pipelined:
                self._envelope_pipelined(smtp, sender, recipient, options)
            else:
                self._envelope(smtp, sender, recipient, options)
            payload = data if stuffed else dot_stuff(data)
            if not payload.endswith(b"\r\n"):
                payload += b"\r\n"
            assert smtp.sock is not None
            smtp.sock.sendall(payload + b".\r\n")
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            # The message was not complete: the server cannot have accepted it.
            self.close()
            raise TemporaryFailure(
                f"connection lost before the message was sent: {error}", stage="data"
            ) from None
        try:
            code, reply = self._replies.read() if pipelined else smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self.close()
            raise Ambiguous(
                f"connection lost while waiting for the server's answer: {error}", stage="data"
            ) from None
        self.last_used = time.monotonic()
        if code != 250:
            raise _fail("data", code, reply, recipient=True)
        return f"{code} {reply.decode(errors='replace')}"[:200]

    def _envelope(self, smtp: smtplib.SMTP, sender: str, recipient: str, options: str) -> None:
        code, reply = smtp.docmd(f"MAIL FROM:<{sender}>{options}")
        if code != 250:
            self._reset()
            raise _fail("mail", code, reply, recipient=False)
        code, reply = smtp.docmd(f"RCPT TO:<{recipient}>")
        if code not in (250, 251):
            self._reset()
            raise _fail("rcpt", code, reply, recipient=True)
        code, reply = smtp.docmd("DATA")
        if code != 354:
            self._reset()
            raise _fail("data", code, reply, recipient=True)

    def _envelope_pipelined(
        self, smtp: smtplib.SMTP, sender: str, recipient: str, options: str
    ) -> None:
        """MAIL, RCPT and DATA in one write (RFC 2920), then their three answers."""
        assert smtp.sock is not None
        smtp.sock.sendall(
            f"MAIL FROM:<{sender}>{options}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()
        )
        read = self._replies.read
        (mail, mail_reply), (rcpt, rcpt_reply), (data, data_reply) = read(), read(), read()
        if data == 354 and (mail != 250 or rcpt not in (250, 251)):
            # A server that opened DATA anyway gets an empty message, which it refuses.
            smtp.sock.sendall(b".\r\n")
            read()
        if mail != 250:
            self._reset()
            raise _fail("mail", mail, mail_reply, recipient=False)
        if rcpt not in (250, 251):
            self._reset()
            raise _fail("rcpt", rcpt, rcpt_reply, recipient=True)
        if data != 354:
            self._reset()
            raise _fail("data", data, data_reply, recipient=True)

    def _reset(self) -> None:
        try:
            assert self._smtp is not None
            self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


class OutboxTransport:
    """The local mailbox of the embedded default (TIDINGS_EMAIL=outbox): each message is
    stored exactly as it would go over SMTP, for staff to read in the browser."""

    relay_id: int | None = None
    keeps_copy = True

    def send(self, sender: str, recipient: str, data: bytes, *, stuffed: bool = False) -> str:
        store(sender=sender, recipient=recipient, data=undo_dot_stuffing(data) if stuffed else data)
        return "250 stored in the local outbox"

    def close(self) -> None:
        pass


@dataclass
class CapturedMail:
    """A message as the test suite reads it (like Django's locmem backend's)."""

    from_email: str
    to: list[str]
    raw: bytes
    parsed: Any = field(repr=False, default=None)

    def __post_init__(self) -> None:
        self.parsed = email.message_from_bytes(self.raw, policy=email.policy.default)

    @property
    def subject(self) -> str:
        return str(self.parsed["Subject"] or "")

    @property
    def body(self) -> str:
        part = self.parsed.get_body(("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.parsed.get_body(("html",))
        return part.get_content() if part is not None else ""

    def __getitem__(self, header: str) -> Any:
        return self.parsed[header]


class MemoryTransport:
    """TIDINGS_EMAIL=memory, for the test suite: messages are appended to
    `django.core.mail.outbox` (Django's test list) as `CapturedMail`."""

    relay_id: int | None = None
    keeps_copy = False
    lock = threading.Lock()

    def send(self, sender: str, recipient: str, data: bytes, *, stuffed: bool = False) -> str:
        data = undo_dot_stuffing(data) if stuffed else data
        outbox: Any = mail  # Django's test list, made by the test runner
        with self.lock:
            if not hasattr(outbox, "outbox"):
                outbox.outbox = []
            outbox.outbox.append(CapturedMail(from_email=sender, to=[recipient], raw=data))
        return "250 kept in memory"

    def close(self) -> None:
        pass


def local_transport() -> Transport:
    """Where mail goes without any relay (TIDINGS_EMAIL=outbox, or memory in tests)."""
    if settings.EMAIL_DELIVERY == "memory":
        return MemoryTransport()
    return OutboxTransport()


def transport_for(config: RelayConfig | None) -> Transport:
    return local_transport() if config is None else SMTPTransport(config)
