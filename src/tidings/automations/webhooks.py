"""Outgoing webhooks: events told to the customer's own systems (docs/automations.md).

- **Endpoints** (`create_endpoint`): https on a public address, checked by
  `core.netguard` when saved and again, resolved, at every delivery (the connection
  goes to the checked address; redirects are not followed). Plain http, or a loopback
  or private host, only where the operator allows the host
  (`TIDINGS_ALLOWED_WEBHOOK_HOSTS`).
- **Events** (`scan`, every minute): read from the facts the other apps record, so
  every path that changes them counts (a form, an import, the API, a bulk action, a
  provider's webhook): subscriptions confirmed and ended, bounce and complaint records,
  campaigns sent, automation steps done. Each scan looks back a little before its
  cursor (rows committed late) and each event is written once per endpoint
  (`webhook_event_once`).
- **Delivery** (`deliver_due`): signed per Standard Webhooks (`webhook-id`,
  `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 with the endpoint's secret),
  retried with backoff for about a day (`BACKOFF`), each attempt's response code in the
  log. An endpoint whose messages fail for good `DISABLE_AFTER` times in a row is
  disabled and the account's users are told.
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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.accounts.mailability import account_users
from tidings.accounts.models import Account
from tidings.audience.models import Subscription
from tidings.automations.models import Step, StepRun, WebhookEndpoint, WebhookMessage
from tidings.campaigns.models import Campaign
from tidings.core import netguard
from tidings.core.mail import Purpose, send_templated
from tidings.sending.models import BounceRecord
from tidings.staff import audit

if TYPE_CHECKING:
    from tidings.accounts.models import User

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


class WebhookError(ValueError):
    """The endpoint is refused; the text says why (nothing was saved)."""


# --- endpoints ----------------------------------------------------------------------------


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
    if parts.scheme == "http" and host not in allow:
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
    chosen = sorted(set(events))
    if not chosen or not set(chosen) <= set(Ev.values):
        raise WebhookError(_("Choose at least one event."))
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(account=account, url=url, events=chosen)
        audit.record("create", endpoint, by=by, account_id=account.pk)
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


@dataclass(frozen=True)
class Event:
    type: str
    key: str
    at: datetime
    data: dict[str, Any]
    contact_id: int | None = None


def _contact(contact: Any) -> dict[str, Any]:
    return {"id": str(contact.uuid), "email": contact.email, "name": contact.name}


def _subscription(row: Subscription) -> dict[str, Any]:
    return {
        "contact": _contact(row.contact),
        "list": {"id": str(row.mailing_list.uuid), "name": row.mailing_list.name},
    }


def events(account_id: int, since: datetime, until: datetime) -> Iterator[Event]:
    """What happened in the account between the two times, oldest first by kind."""
    subs = Subscription.objects.filter(
        mailing_list__account_id=account_id, contact__restricted_at__isnull=True
    ).select_related("contact", "mailing_list")
    confirmed = (
        subs.filter(status=Subscription.Status.CONFIRMED)
        .annotate(at=Coalesce("confirmed_at", "created_at"))
        .filter(at__gt=since, at__lte=until)
        .order_by("at", "pk")
    )
    for joined in confirmed:
        yield Event(
            Ev.SUBSCRIBED,
            f"subscribed:{joined.pk}:{joined.at.timestamp()}",
            joined.at,
            _subscription(joined),
            joined.contact_id,
        )
    ended = subs.filter(unsubscribed_at__gt=since, unsubscribed_at__lte=until).order_by(
        "unsubscribed_at", "pk"
    )
    for gone in ended:
        assert gone.unsubscribed_at is not None
        yield Event(
            Ev.UNSUBSCRIBED,
            f"unsubscribed:{gone.pk}:{gone.unsubscribed_at.timestamp()}",
            gone.unsubscribed_at,
            _subscription(gone),
            gone.contact_id,
        )
    bounces = (
        BounceRecord.objects.filter(
            account_id=account_id,
            contact__isnull=False,
            contact__restricted_at__isnull=True,
            received_at__gt=since,
            received_at__lte=until,
        )
        .exclude(kind=BounceRecord.Kind.SOFT)
        .select_related("contact")
        .order_by("received_at", "pk")
    )
    for record in bounces:
        kind = Ev.COMPLAINED if record.kind == BounceRecord.Kind.COMPLAINT else Ev.BOUNCED
        yield Event(
            kind,
            f"bounce:{record.pk}",
            record.received_at,
            {"contact": _contact(record.contact), "kind": record.kind},
            record.contact_id,
        )
    runs = (
        StepRun.objects.filter(
            step__automation__account_id=account_id,
            contact__restricted_at__isnull=True,
            ran_at__gt=since,
            ran_at__lte=until,
        )
        .select_related("contact", "step__automation")
        .order_by("ran_at", "pk")
    )
    for run in runs:
        automation = run.step.automation
        yield Event(
            Ev.STEP_DONE,
            f"step:{run.pk}",
            run.ran_at,
            {
                "contact": _contact(run.contact),
                "automation": {"id": str(automation.uuid), "name": automation.name},
                "step": run.step.position + 1,
            },
            run.contact_id,
        )
    sent = (
        Campaign.objects.filter(
            account_id=account_id,
            status=Campaign.Status.SENT,
            finished_at__gt=since,
            finished_at__lte=until,
        )
        .exclude(pk__in=Step.objects.values("campaign_id"))
        .order_by("finished_at", "pk")
    )
    for campaign in sent:
        assert campaign.finished_at is not None
        yield Event(
            Ev.CAMPAIGN_SENT,
            f"campaign:{campaign.pk}",
            campaign.finished_at,
            {"campaign": {"id": str(campaign.uuid), "name": campaign.name}},
        )


def scan(now: datetime | None = None) -> int:
    """Write the events of every enabled endpoint since its cursor; the number written.
    A closed or restricted account's endpoints keep their cursor: nothing is read."""
    now = now or timezone.now()
    written = 0
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
            for event in events(endpoint.account_id, endpoint.cursor - OVERLAP, now)
            if event.type in wanted
        ]
        with transaction.atomic():
            made = WebhookMessage.objects.bulk_create(rows, ignore_conflicts=True)
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(cursor=now)
        written += len(made)
    return written


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


def _claim(now: datetime) -> WebhookMessage | None:
    """One due message of an enabled endpoint of an account that may process, about no
    restricted contact, claimed (committed)."""
    due = WebhookMessage.objects.filter(
        Q(status=W.PENDING, next_attempt_at__lte=now)
        | Q(status=W.SENDING, claimed_at__lt=now - timedelta(seconds=CLAIM_SECONDS)),
        Q(contact__isnull=True) | Q(contact__restricted_at__isnull=True),
        Account.may_process_q("endpoint__account__"),
        endpoint__enabled=True,
    ).order_by("next_attempt_at", "pk")
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
