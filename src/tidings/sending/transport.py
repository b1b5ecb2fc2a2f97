"""Getting bytes to a relay: pooled SMTP connections, and rate limits shared by every
worker through Redis.

The outcome of one SMTP transaction is one of four: accepted (the server's 250 after
DATA), a temporary failure (4xx, dropped connection before the message was complete:
retry later), a permanent failure (5xx: never retry), or *ambiguous*: the connection
broke after the whole message was handed over but before the server answered. The
message may have been accepted, so it is not retried (a duplicate is worse than a miss).
"""

from __future__ import annotations

import email
import email.policy
import logging
import os
import smtplib
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import redis
from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from tidings.sending.message import dot_stuff
from tidings.sending.models import Relay

log = logging.getLogger(__name__)

# A pooled connection unused for this long is closed rather than reused.
IDLE_SECONDS = 50


class SendFailure(Exception):
    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class TemporaryFailure(SendFailure):
    pass


class PermanentFailure(SendFailure):
    """5xx. `recipient` is True when the server refused the recipient or the message
    (a hard bounce), False when it refused us (sender, authentication)."""

    def __init__(self, message: str, code: int = 0, *, recipient: bool = True) -> None:
        super().__init__(message, code)
        self.recipient = recipient


class Ambiguous(SendFailure):
    pass


def _fail(stage: str, code: int, reply: bytes, *, recipient: bool) -> SendFailure:
    text = f"{stage}: {code} {reply.decode(errors='replace')}"[:500]
    if 400 <= code < 500:
        return TemporaryFailure(text, code)
    return PermanentFailure(text, code, recipient=recipient)


class Transport(Protocol):
    relay_id: int | None

    def send(self, sender: str, recipient: str, data: bytes) -> str: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class RelayConfig:
    """A relay's settings, read once per batch (the model row may change meanwhile)."""

    id: int
    host: str
    port: int
    security: str
    username: str
    password: str
    max_connections: int
    rate_per_second: int
    rate_per_hour: int
    esp: str

    @classmethod
    def of(cls, relay: Relay) -> RelayConfig:
        return cls(
            id=relay.pk,
            host=relay.host,
            port=relay.port,
            security=relay.security,
            username=relay.username,
            password=relay.password,
            max_connections=max(1, relay.max_connections),
            rate_per_second=relay.rate_per_second,
            rate_per_hour=relay.rate_per_hour,
            esp=relay.esp,
        )


class SMTPTransport:
    """One SMTP connection to a relay, opened lazily, reused across messages."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.relay_id: int | None = config.id
        self.token = uuid.uuid4().hex
        self._smtp: smtplib.SMTP | None = None
        self.last_used = 0.0

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        timeout = settings.SENDING["smtp_timeout"]
        try:
            smtp: smtplib.SMTP
            if c.security == Relay.Security.TLS:
                smtp = smtplib.SMTP_SSL(
                    c.host, c.port, timeout=timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=timeout)
                if c.security == Relay.Security.STARTTLS:
                    smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo_or_helo_if_needed()
            if c.username:
                smtp.login(c.username, c.password)
        except smtplib.SMTPAuthenticationError as error:
            raise PermanentFailure(
                f"the relay refused the login: {error.smtp_code}", error.smtp_code, recipient=False
            ) from None
        except (OSError, smtplib.SMTPException) as error:
            raise TemporaryFailure(f"cannot connect to {c.host}:{c.port}: {error}") from None
        return smtp

    def send(self, sender: str, recipient: str, data: bytes) -> str:
        """Hand one message to the relay; the server's acceptance line, or an exception."""
        if self._smtp is not None and time.monotonic() - self.last_used > IDLE_SECONDS:
            self.close()
        if self._smtp is None:
            self._smtp = self._connect()
        smtp = self._smtp
        try:
            if smtp.has_extn("pipelining"):
                self._envelope_pipelined(smtp, sender, recipient)
            else:
                self._envelope(smtp, sender, recipient)
            payload = dot_stuff(data)
            if not payload.endswith(b"\r\n"):
                payload += b"\r\n"
            smtp.send(payload + b".\r\n")
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            # The message was not complete: the server cannot have accepted it.
            self.close()
            raise TemporaryFailure(
                f"connection lost before the message was sent: {error}"
            ) from None
        try:
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self.close()
            raise Ambiguous(
                f"connection lost while waiting for the server's answer: {error}"
            ) from None
        self.last_used = time.monotonic()
        if code != 250:
            raise _fail("after DATA", code, reply, recipient=True)
        return f"{code} {reply.decode(errors='replace')}"[:200]

    def _envelope(self, smtp: smtplib.SMTP, sender: str, recipient: str) -> None:
        code, reply = smtp.mail(sender)
        if code != 250:
            self._reset()
            raise _fail("MAIL FROM", code, reply, recipient=False)
        code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            self._reset()
            raise _fail("RCPT TO", code, reply, recipient=True)
        code, reply = smtp.docmd("DATA")
        if code != 354:
            self._reset()
            raise _fail("DATA", code, reply, recipient=True)

    def _envelope_pipelined(self, smtp: smtplib.SMTP, sender: str, recipient: str) -> None:
        """MAIL, RCPT and DATA in one write (RFC 2920), then their three answers."""
        smtp.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n")
        answers = [smtp.getreply() for _ in range(3)]
        (mail, mail_reply), (rcpt, rcpt_reply), (data, data_reply) = answers
        if data == 354 and (mail != 250 or rcpt not in (250, 251)):
            # A server that opened DATA anyway gets an empty message, which it refuses.
            smtp.send(b".\r\n")
            smtp.getreply()
        if mail != 250:
            self._reset()
            raise _fail("MAIL FROM", mail, mail_reply, recipient=False)
        if rcpt not in (250, 251):
            self._reset()
            raise _fail("RCPT TO", rcpt, rcpt_reply, recipient=True)
        if data != 354:
            self._reset()
            raise _fail("DATA", data, data_reply, recipient=True)

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

    def release(self) -> None:
        """Back to this process's pool for the next batch."""
        _POOL.put(self)


class DjangoTransport:
    """No relay configured: hand the message to Django's mail backend (the local outbox
    of the embedded default, or EMAIL_HOST)."""

    relay_id: int | None = None

    def send(self, sender: str, recipient: str, data: bytes) -> str:
        parsed = email.message_from_bytes(data, policy=email.policy.SMTP)
        message = _RawEmail(parsed, sender, recipient)
        try:
            get_connection(fail_silently=False).send_messages([message])
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            raise _fail("RCPT TO", code, reply, recipient=True) from None
        except smtplib.SMTPResponseException as error:
            reply = (
                error.smtp_error
                if isinstance(error.smtp_error, bytes)
                else error.smtp_error.encode()
            )
            raise _fail("SMTP", error.smtp_code, reply, recipient=True) from None
        except (OSError, smtplib.SMTPException) as error:
            raise TemporaryFailure(str(error)[:500]) from None
        return "250 handed to the mail backend"

    def release(self) -> None:
        pass


class _RawEmail(EmailMessage):
    """A message whose bytes are already made, for Django's mail backends."""

    def __init__(self, parsed: Any, sender: str, recipient: str) -> None:
        text = parsed.get_body(("plain",))
        super().__init__(
            subject=str(parsed["Subject"] or ""),
            body=text.get_content() if text is not None else "",
            from_email=sender,
            to=[recipient],
        )
        self._parsed = parsed

    def message(self, *, policy: Any = None) -> Any:
        return self._parsed


class _Pool:
    """SMTP connections kept by this worker process between batches, per relay."""

    def __init__(self) -> None:
        self._idle: dict[int, list[SMTPTransport]] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def get(self, config: RelayConfig) -> SMTPTransport:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's sockets are not ours
                self._idle, self._pid = {}, os.getpid()
            idle = self._idle.get(config.id, [])
            while idle:
                transport = idle.pop()
                if transport.config == config:
                    return transport
                transport.close()
        return SMTPTransport(config)

    def put(self, transport: SMTPTransport) -> None:
        with self._lock:
            self._idle.setdefault(transport.config.id, []).append(transport)

    def close_all(self) -> None:
        with self._lock:
            for idle in self._idle.values():
                for transport in idle:
                    transport.close()
            self._idle = {}


_POOL = _Pool()


def transport_for(relay: Relay | None) -> Transport:
    if relay is None:
        return DjangoTransport()
    return _POOL.get(RelayConfig.of(relay))


# Rate limits and connection slots shared by all workers (Redis) ------------------------

# GCRA over two limits at once: a message goes only if both allow it, and then both are
# charged. Time is Redis's own, so every machine agrees. Returns 0, or the milliseconds
# to wait. KEYS: second, hour. ARGV: per-second interval and tolerance, per-hour
# interval and tolerance (ms; interval 0 = no limit).
GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local tats = {}
for i = 1, 2 do
  local interval = tonumber(ARGV[i * 2 - 1])
  if interval > 0 then
    local tat = tonumber(redis.call('GET', KEYS[i]) or now)
    if tat < now then tat = now end
    local allow_at = tat - tonumber(ARGV[i * 2])
    if allow_at > now and allow_at - now > wait then wait = allow_at - now end
    tats[i] = tat + interval
  end
end
if wait > 0 then return wait end
for i = 1, 2 do
  if tats[i] then
    redis.call('SET', KEYS[i], tats[i], 'PX', math.max(1000, tats[i] - now + 1000))
  end
end
return 0
"""

# A semaphore of connection slots per relay: members are connection tokens, scores
# their expiry (ms). Returns 1 if the token holds a slot now.
SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if held or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 1000)
  return 1
end
return 0
"""


@cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def shared_redis() -> redis.Redis | None:
    url = settings.REDIS_URL
    return _redis(url) if url else None


class _LocalLimiter:
    """The same GCRA in this process only, when no Redis is configured (embedded
    default: one worker)."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait_ms(self, keys: list[str], limits: list[tuple[float, float]]) -> int:
        with self._lock:
            now = time.monotonic() * 1000
            wait, tats = 0.0, {}
            for key, (interval, tolerance) in zip(keys, limits, strict=True):
                if interval <= 0:
                    continue
                tat = max(self._tat.get(key, now), now)
                wait = max(wait, tat - tolerance - now)
                tats[key] = tat + interval
            if wait > 0:
                return int(wait) + 1
            self._tat.update(tats)
            return 0


_local = _LocalLimiter()


def _limits(config: RelayConfig) -> list[tuple[float, float]]:
    per_second = (
        (1000 / config.rate_per_second, 1000 - 1000 / config.rate_per_second)
        if (config.rate_per_second)
        else (0, 0)
    )
    # The hourly quota is spread over the hour with bursts of at most a minute's worth.
    per_hour = (
        (3_600_000 / config.rate_per_hour, 60_000.0 - 3_600_000 / config.rate_per_hour)
        if config.rate_per_hour
        else (0, 0)
    )
    return [
        (per_second[0], max(0.0, per_second[1])),
        (per_hour[0], max(0.0, per_hour[1])),
    ]


def wait_for_rate(config: RelayConfig, *, deadline: float | None = None) -> bool:
    """Block until the relay's limits allow one more message; False if that would pass
    `deadline` (time.monotonic())."""
    if not (config.rate_per_second or config.rate_per_hour):
        return True
    keys = [f"tidings:rate:{config.id}:s", f"tidings:rate:{config.id}:h"]
    limits = _limits(config)
    client = shared_redis()
    while True:
        if client is not None:
            args = [v for pair in limits for v in pair]
            wait = int(client.eval(GCRA, 2, *keys, *args))
        else:
            wait = _local.wait_ms(keys, limits)
        if wait <= 0:
            return True
        if deadline is not None and time.monotonic() + wait / 1000 > deadline:
            return False
        time.sleep(wait / 1000)


def take_connection_slot(transport: SMTPTransport, *, hold_seconds: float) -> bool:
    """Hold one of the relay's `max_connections` slots (all workers together)."""
    client = shared_redis()
    if client is None:
        return True
    key = f"tidings:slots:{transport.config.id}"
    ok = client.eval(
        SLOT, 1, key, transport.token, transport.config.max_connections, int(hold_seconds * 1000)
    )
    return bool(ok)


def give_back_slot(transport: SMTPTransport) -> None:
    client = shared_redis()
    if client is not None:
        client.zrem(f"tidings:slots:{transport.config.id}", transport.token)
