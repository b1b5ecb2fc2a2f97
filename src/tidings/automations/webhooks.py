"""Outgoing webhooks: events told to the customer's own systems (docs/automations.md).

- **Endpoints** (`create_endpoint`): https on a public address, checked by
  `core.netguard` when saved and again, resolved, at every delivery (the connection
  goes to the checked address; redirects are not followed). Plain http, or a loopback
  or private host, only where the operator allows the host
  (`TIDINGS_ALLOWED_WEBHOOK_HOSTS`).
- **Events** (`scan`, every minute; what they are: `webhook_events`): read from the
  facts the other apps record, so every path that changes them counts. Each scan looks
  back a little before its cursor (rows committed late), writes the events oldest
  first, and each once per endpoint (`webhook_event_once`).
- **Delivery** (`deliver_due`): signed per Standard Webhooks (`webhook-id`,
  `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 with the endpoint's secret),
  retried with backoff for about a day (`BACKOFF`), each attempt's response code in the
  log. An endpoint whose messages fail for good `DISABLE_AFTER` times in a row is
  disabled and the account's users are told.
- **Ordering per contact** (`_claim`): a message is not sent while an earlier one about
  the same contact to the same endpoint is pending or being sent (being retried, say):
  it waits, and the log says so (`delivery_log`). One failed for good no longer holds
  the others. Messages about no contact (campaign sent, a test) are not held.
- **Closed and restricted** (P18, P21): a closed or restricted account's endpoints are
  neither scanned nor delivered to (a restricted account's wait where they are until the
  restriction is lifted), and a restricted contact is in no event and no delivery.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.accounts.mailability import account_users
from tidings.accounts.models import Account, User
from tidings.automations import webhook_events
from tidings.automations.models import WebhookEndpoint, WebhookMessage, new_webhook_secret
from tidings.core import jobs, netguard
from tidings.core.mail import Purpose, send_templated
from tidings.staff import audit

log = logging.getLogger(__name__)

Ev = WebhookEndpoint.Event
W = WebhookMessage.Status
# Seconds to wait after each failed attempt (Standard Webhooks' suggested schedule:
# about 27 hours in all); after the last, the message has failed for good.
BACKOFF = (5, 300, 1800, 7200, 18000, 36000, 36000)
# Messages failed for good in a row that disable an endpoint.
DISABLE_AFTER = 5
# How far before its cursor a scan looks again (rows committed after the last scan
# with an earlier time); the unique key keeps each event once.
OVERLAP = timedelta(minutes=10)
# A claim older than this belongs to a dead worker: the message is sent again (a
# receiver deduplicates by webhook-id).
CLAIM_SECONDS = 300
CONNECT_TIMEOUT = 5.0
# The longest one attempt may take, however slowly the endpoint answers.
ATTEMPT_SECONDS = 30.0
# The longest endpoint address (the column's length).
URL_MAX = WebhookEndpoint._meta.get_field("url").max_length or 500
TIMEOUT = 10.0
# The type of the message `send_test` sends, and the task that delivers due messages now.
TEST_EVENT = "webhook.test"
DELIVER_TASK = "tidings.automations.tasks.deliver_webhooks"


class WebhookError(ValueError):
    """The endpoint is refused; the text says why (nothing was saved)."""


# --- endpoints ----------------------------------------------------------------------------


def http_hosts() -> list[str]:
    """The hosts plain http may point at: those the operator allows by name or address
    (a network allowed by CIDR is let through the guard, over https only)."""
    return [host for host in settings.ALLOWED_WEBHOOK_HOSTS if "/" not in host]


def check_url(url: str) -> str:
    """The URL as stored, or WebhookError: https (or http on an allowed host), and a
    host that is not, and does not resolve to, the platform's own network."""
    url = (url or "").strip()
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        # urlsplit drops tabs and newlines silently and the HTTP client refuses spaces
        # and control characters at every try: the address as typed is the one used.
        raise WebhookError(_("An address has no spaces nor control characters."))
    if len(url) > URL_MAX:
        raise WebhookError(_("An address is at most %(n)s characters.") % {"n": URL_MAX})
    parts = urlsplit(url)
    allow = settings.ALLOWED_WEBHOOK_HOSTS
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise WebhookError(_("Give a full address starting with https://."))
    if parts.username or parts.password:
        raise WebhookError(_("An endpoint's address may not hold a login."))
    if parts.scheme == "http" and host not in http_hosts():
        raise WebhookError(_("Only https addresses may receive webhooks."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        netguard.check_host(host, port, allow=allow)
    except (netguard.ForbiddenHost, ValueError) as error:
        raise WebhookError(str(error)) from None
    return url


def create_endpoint(
    account: Account, *, url: str, events: list[str], by: User | None
) -> WebhookEndpoint:
    """A new endpoint of `account` for `events`."""
    url = check_url(url)
    chosen = _events(events)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(account=account, url=url, events=chosen)
        audit.record("create", endpoint, by=by, account_id=account.pk)
    return endpoint


def _events(events: list[str]) -> list[str]:
    chosen = sorted(set(events))
    if not chosen or not set(chosen) <= set(Ev.values):
        raise WebhookError(_("Choose at least one event."))
    return chosen


def update_endpoint(
    endpoint: WebhookEndpoint,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    by: User | None,
) -> WebhookEndpoint:
    """Change an endpoint's address or events (each None stays); checked as when it was
    made, and nothing is saved on a refusal. Messages already written keep theirs."""
    fields = []
    if url is not None:
        endpoint.url = check_url(url)
        fields.append("url")
    if events is not None:
        endpoint.events = _events(events)
        fields.append("events")
    with transaction.atomic():
        endpoint.save(update_fields=fields)
        audit.record("update", endpoint, by=by, fields=fields, account_id=endpoint.account_id)
    return endpoint


def rotate_secret(endpoint: WebhookEndpoint, *, by: User | None) -> WebhookEndpoint:
    """A new signing secret: every attempt from now on (retries too) is signed with it."""
    with transaction.atomic():
        endpoint.secret = new_webhook_secret()
        endpoint.save(update_fields=["secret"])
        audit.record("update", endpoint, by=by, fields=["secret"], account_id=endpoint.account_id)
    return endpoint


def enable(endpoint: WebhookEndpoint, *, by: User | None) -> None:
    """Turn a disabled endpoint on again (its failed messages stay failed)."""
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            enabled=True, failures=0, disabled_reason="", cursor=timezone.now()
        )
        audit.record("update", endpoint, by=by, fields=["enabled"], account_id=endpoint.account_id)


def delete_endpoint(endpoint: WebhookEndpoint, *, by: User | None) -> None:
    with transaction.atomic():
        audit.record("delete", endpoint, by=by, account_id=endpoint.account_id)
        endpoint.delete()


# --- events ------------------------------------------------------------------------------


def scan(now: datetime | None = None) -> int:
    """Write the events of every enabled endpoint since its cursor, oldest first; the
    number written. A closed or restricted account's endpoints keep their cursor:
    nothing is read."""
    now = now or timezone.now()
    written = 0
    drop_objected()
    for endpoint in WebhookEndpoint.objects.filter(
        Account.may_process_q("account__"), enabled=True
    ):
        wanted = set(endpoint.events)
        rows = [
            WebhookMessage(
                endpoint=endpoint,
                event=event.type,
                key=event.key,
                contact_id=event.contact_id,
                payload={
                    "type": event.type,
                    "timestamp": event.at.isoformat(),
                    "data": event.data,
                },
                next_attempt_at=now,
            )
            for event in webhook_events.events(endpoint.account_id, _since(endpoint), now, wanted)
        ]
        with transaction.atomic():
            made = WebhookMessage.objects.bulk_create(rows, ignore_conflicts=True)
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(cursor=now)
        written += len(made)
    return written


def _since(endpoint: WebhookEndpoint) -> datetime:
    """Where a scan of the endpoint starts: its cursor less the overlap, but never
    before the endpoint was made (what happened before, it is not told)."""
    return max(endpoint.cursor - OVERLAP, endpoint.created_at)


def drop_objected() -> int:
    """Delete the opens and clicks not yet sent of contacts who objected to tracking
    since (P26): they are never told, and what waited behind them goes on."""
    deleted, _kinds = WebhookMessage.objects.filter(
        status__in=[W.PENDING, W.SENDING],
        event__in=webhook_events.TRACKING,
        contact__allow_tracking=False,
    ).delete()
    return deleted


def send_test(endpoint: WebhookEndpoint, *, by: User | None) -> WebhookMessage:
    """A `webhook.test` message to the endpoint, delivered at once by the worker (the
    delivery log shows the answer)."""
    now = timezone.now()
    with transaction.atomic():
        message = WebhookMessage.objects.create(
            endpoint=endpoint,
            event=TEST_EVENT,
            key=f"test:{uuid.uuid4()}",
            payload={
                "type": TEST_EVENT,
                "timestamp": now.isoformat(),
                "data": {"endpoint": {"id": str(endpoint.uuid)}},
            },
            next_attempt_at=now,
        )
        audit.record("update", endpoint, by=by, fields=["test"], account_id=endpoint.account_id)
        jobs.enqueue(DELIVER_TASK)
    return message


def delivery_log(endpoint: WebhookEndpoint, limit: int = 50) -> QuerySet[WebhookMessage]:
    """The endpoint's last messages, newest first, each with `waiting`: an earlier
    message about the same contact is still to be sent, so it is held (`_claim`)."""
    return (
        WebhookMessage.objects.filter(endpoint=endpoint)
        .annotate(waiting=Q(status=W.PENDING) & Exists(_earlier_unsent()))
        .order_by("-pk")[:limit]
    )


# --- delivery ----------------------------------------------------------------------------


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value (Standard Webhooks, v1)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST `body` to `url` through a connection to a checked address (core.netguard);
    the response's status code. Redirects are answers like any other, not followed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    raw = netguard.connect(
        host,
        port,
        allow=settings.ALLOWED_WEBHOOK_HOSTS,
        connect_timeout=CONNECT_TIMEOUT,
        timeout=TIMEOUT,
    )
    # TIMEOUT bounds each read; an endpoint that answers a byte at a time would still
    # hold the worker, and every other account's webhooks behind it: the whole attempt
    # is cut at ATTEMPT_SECONDS.
    cut = threading.Event()

    def _cut() -> None:
        cut.set()
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(ATTEMPT_SECONDS, _cut)
    timer.start()
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        sock = raw
        if tls:
            sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        connection.sock = sock
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(4096)
        return response.status
    except (OSError, http.client.HTTPException):
        if cut.is_set():
            raise TimeoutError(f"no answer within {ATTEMPT_SECONDS} seconds") from None
        raise
    finally:
        timer.cancel()
        connection.close()
        raw.close()


def _earlier_unsent() -> QuerySet[WebhookMessage]:
    """For a message (OuterRef), the earlier ones about the same contact to the same
    endpoint not yet delivered nor failed for good (index webhook_contact_unsent)."""
    return WebhookMessage.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        contact_id=OuterRef("contact_id"),
        pk__lt=OuterRef("pk"),
        status__in=[W.PENDING, W.SENDING],
    )


def _claim(now: datetime) -> WebhookMessage | None:
    """One due message of an enabled endpoint of an account that may process, about no
    restricted contact, claimed (committed)."""
    due = (
        WebhookMessage.objects.filter(
            Q(status=W.PENDING, next_attempt_at__lte=now)
            | Q(status=W.SENDING, claimed_at__lt=now - timedelta(seconds=CLAIM_SECONDS)),
            Q(contact__isnull=True) | Q(contact__restricted_at__isnull=True),
            Account.may_process_q("endpoint__account__"),
            endpoint__enabled=True,
        )
        # Ordering per contact: held while an earlier one about the same contact to
        # the same endpoint is still to be sent (pending, or being sent elsewhere).
        .exclude(Exists(_earlier_unsent()))
        .order_by("next_attempt_at", "pk")
    )
    with transaction.atomic():
        message = due.select_for_update(skip_locked=True, of=("self",)).first()
        if message is None:
            return None
        message.status, message.claimed_at = W.SENDING, now
        message.attempts += 1
        message.save(update_fields=["status", "claimed_at", "attempts"])
    return message


def deliver(message: WebhookMessage, now: datetime) -> bool:
    """One attempt; the outcome recorded. True when delivered."""
    endpoint = message.endpoint
    body = json.dumps(message.payload, separators=(",", ":")).encode()
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Tidings-Webhooks",
        "webhook-id": message.msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(endpoint.secret, message.msg_id, timestamp, body),
    }
    code, error = None, ""
    try:
        code = post(endpoint.url, body, headers)
    except netguard.ForbiddenHost as refused:
        error = str(refused)
    except (OSError, http.client.HTTPException) as failure:
        error = f"{type(failure).__name__}: {failure}"
    delivered = code is not None and 200 <= code < 300
    values: dict[str, Any] = {"response_code": code, "last_error": error[:500]}
    if delivered:
        values.update(status=W.DELIVERED, delivered_at=now, last_error="")
    elif message.attempts > len(BACKOFF):
        values.update(status=W.FAILED, next_attempt_at=None)
    else:
        wait = BACKOFF[message.attempts - 1]
        values.update(status=W.PENDING, next_attempt_at=now + timedelta(seconds=wait))
        if code is not None and not error:
            values["last_error"] = _("The endpoint answered %(code)s.") % {"code": code}
    WebhookMessage.objects.filter(pk=message.pk, status=W.SENDING).update(**values)
    if delivered:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failures=0)
    elif values["status"] == W.FAILED:
        _failed_for_good(endpoint)
    return delivered


def _failed_for_good(endpoint: WebhookEndpoint) -> None:
    """Count a message failed for good; disable the endpoint after DISABLE_AFTER in a
    row and tell the account's users."""
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.failures += 1
        if locked.failures < DISABLE_AFTER or not locked.enabled:
            locked.save(update_fields=["failures"])
            return
        locked.enabled = False
        locked.disabled_reason = _(
            "%(n)s messages in a row could not be delivered, each retried for a day."
        ) % {"n": locked.failures}
        locked.save(update_fields=["failures", "enabled", "disabled_reason"])
        users = list(account_users(locked.account_id, Purpose.SERVICE))
        send_templated(
            "automations/mail/webhook_disabled",
            [u.email for u in users],
            {"endpoint": locked},
            purpose=Purpose.SERVICE,
            account_id=locked.account_id,
            user_ids={u.email: u.pk for u in users},
        )
    log.warning("webhook endpoint %s disabled", endpoint.pk)


def deliver_due(now: datetime | None = None, *, limit: int = 500) -> int:
    """Attempt up to `limit` due messages; the number delivered."""
    delivered = 0
    for _n in range(limit):
        moment = now or timezone.now()
        message = _claim(moment)
        if message is None:
            break
        delivered += int(deliver(message, moment))
    return delivered
