"""Every write of the consent app: cookie choices, third-party announcements, page counts."""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account, User
from tidings.consent.models import (
    OPTIONAL,
    TRACKING,
    Category,
    ConsentRecord,
    PageView,
    PageViewFlush,
    ThirdParty,
)
from tidings.consent.state import active_third_parties
from tidings.core.mail import send_templated
from tidings.core.sharedredis import shared_redis


class ChoiceRejected(Exception):
    """A cookie choice that names something other than the known optional categories."""


class ThirdPartyRejected(Exception):
    """A third party that cannot be announced as given (bad category or tag address)."""


def truncate_ip(address: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of an address: enough to spot abuse, not a
    person. Empty for anything that is not an address."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


_BROWSERS = (
    ("Edge", re.compile(r"Edg/")),
    ("Opera", re.compile(r"OPR/")),
    ("Firefox", re.compile(r"Firefox/")),
    ("Chrome", re.compile(r"Chrom(e|ium)/")),
    ("Safari", re.compile(r"Safari/")),
)


def browser_family(user_agent: str) -> str:
    """Only the browser's family (never the full user agent, which helps fingerprint)."""
    for name, pattern in _BROWSERS:
        if pattern.search(user_agent):
            return name
    return "other" if user_agent else ""


def record_choice(
    *,
    categories: list[str],
    method: str,
    version: str,
    signal: str = "",
    consent_id: str = "",
    ip: str = "",
    user_agent: str = "",
    user: User | None = None,
) -> ConsentRecord:
    """Store one cookie choice as proof (P22). Under Do Not Track or Global Privacy Control
    tracking categories are dropped and the signal is the method recorded (P28)."""
    known = {c.value for c in OPTIONAL}
    if not all(isinstance(c, str) and c in known for c in categories):
        raise ChoiceRejected(_("unknown cookie category"))
    if method not in ConsentRecord.Method.values:
        raise ChoiceRejected(_("unknown method"))
    chosen = sorted(set(categories))
    if signal:
        chosen = [c for c in chosen if c not in {t.value for t in TRACKING}]
        method = signal
    try:
        parsed_id = uuid.UUID(consent_id) if consent_id else uuid.uuid4()
    except ValueError:
        parsed_id = uuid.uuid4()
    record = ConsentRecord(
        consent_id=parsed_id,
        categories=chosen,
        banner_version=version,
        given_at=timezone.now(),
        ip_network=truncate_ip(ip),
        browser=browser_family(user_agent),
        method=method,
        user=user if user is not None and user.is_authenticated else None,
    )
    record.full_clean()
    record.save()
    return record


def notice_days() -> int:
    """The configured notice period (settings refuse to start below the policy's; a
    party saved with less is refused by the model)."""
    return int(settings.CONSENT_NOTICE_DAYS)


def announce_third_party(
    *,
    name: str,
    category: str,
    purpose: str,
    data_received: str,
    policy_url: str,
    opt_out_url: str = "",
    script_src: str = "",
    now: datetime | None = None,
) -> ThirdParty:
    """Add a third party that takes effect only after the notice period (P24), and tell
    every active customer by mail; the notice also shows in the app until it takes effect.
    Announcing the same name again changes nothing and sends nothing."""
    now = now or timezone.now()
    if category not in Category.values:
        raise ThirdPartyRejected(_("unknown category %(category)s") % {"category": repr(category)})
    if script_src and urlsplit(script_src).scheme != "https":
        raise ThirdPartyRejected(_("a tag must be an https:// script address"))
    with transaction.atomic():
        party = ThirdParty.objects.select_for_update().filter(name=name).first()
        if party is None:
            party = ThirdParty(
                name=name,
                category=category,
                purpose=purpose,
                data_received=data_received,
                policy_url=policy_url,
                opt_out_url=opt_out_url,
                script_src=script_src,
                added_at=now,
                effective_at=now + timedelta(days=notice_days()),
            )
            try:
                party.full_clean()
            except ValidationError as error:
                raise ThirdPartyRejected("; ".join(error.messages)) from None
            party.save()
        if party.announced_at is not None:
            return party
        for email in _customers_to_notify():
            send_templated("consent/mail/new_third_party", [email], {"party": party})
        party.announced_at = now
        party.save(update_fields=["announced_at"])
    return party


def _customers_to_notify() -> Iterator[str]:
    users = User.objects.filter(
        is_active=True,
        is_staff=False,
        account__isnull=False,
        account__status=Account.Status.ACTIVE,
        email_confirmed_at__isnull=False,
    )
    return users.order_by("pk").values_list("email", flat=True).iterator(chunk_size=1000)


def upcoming_third_parties(now: datetime | None = None) -> list[ThirdParty]:
    now = now or timezone.now()
    active = active_third_parties()
    if active is None:
        return list(ThirdParty.objects.filter(active=True, effective_at__gt=now))
    return [p for p in active if p.effective_at > now]


# Page views with Redis (PAGE_VIEW_BUFFER): one HINCRBY per view into the live hash, a
# field per day and page. `flush_page_views` moves the hash aside under a batch name of
# its own (atomically: a view after it starts a new live hash) and writes each batch with
# a mark in one transaction, then deletes it: a flush killed before its commit leaves the
# batch to the next (nothing lost), one killed after it leaves a batch whose mark says it
# is written (nothing counted twice).
PAGE_VIEWS = "tidings:page-views"
PAGE_VIEW_BATCHES = "tidings:page-views:batches"
PAGE_VIEW_BATCH = "tidings:page-views:batch:"
# KEYS: the live hash, the new batch's name, the set of batches not yet deleted.
_MOVE_ASIDE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('SADD', KEYS[3], KEYS[2])
return 1
"""
# A batch's mark is needed only until the batch is deleted, a moment after its commit.
PAGE_VIEW_MARK_DAYS = 1


def _page_view_buffer() -> redis.Redis | None:
    return shared_redis() if settings.PAGE_VIEW_BUFFER else None


def count_page_view(path: str, day: date | None = None) -> None:
    """Add one to the day's counter of a page: the only thing kept about a visit (P26).
    With Redis, added to the live hash (written by `flush_page_views`)."""
    day = day or timezone.localdate()
    path = path[:500]
    buffer = _page_view_buffer()
    if buffer is not None:
        try:
            buffer.hincrby(PAGE_VIEWS, f"{day.isoformat()} {path}", 1)
            return
        except redis.RedisError:
            pass  # Redis is away: the page is not refused for its counter, written here
    _add_page_views({(day, path): 1})


def _add_page_views(counts: Mapping[tuple[date, str], int]) -> None:
    """Add to the counters, creating the day's row on its first view (one statement each,
    no savepoint: PostgreSQL and SQLite both take ON CONFLICT)."""
    table = PageView._meta.db_table
    with connection.cursor() as cursor:
        for (day, path), n in sorted(counts.items()):
            if n > 0:
                cursor.execute(  # the table name is the model's own
                    f"INSERT INTO {table} (day, path, count) VALUES (%s, %s, %s) "  # noqa: S608
                    f"ON CONFLICT (day, path) DO UPDATE SET count = {table}.count + excluded.count",
                    [day, path[:500], n],
                )


def flush_page_views() -> int:
    """Write the page views counted in Redis, exactly once: the live hash is moved aside
    as a new batch, then every batch not yet deleted is written (with its mark, in one
    transaction) and deleted. Safe to run at any time, at once with another, and to kill
    at any point. Returns the views written. With Redis it runs even when the buffer has
    been turned off since: what it held is written."""
    buffer = shared_redis()
    if buffer is None:
        return 0
    buffer.eval(
        _MOVE_ASIDE, 3, PAGE_VIEWS, f"{PAGE_VIEW_BATCH}{uuid.uuid4().hex}", PAGE_VIEW_BATCHES
    )
    written = 0
    for key in sorted(_text(k) for k in buffer.smembers(PAGE_VIEW_BATCHES)):
        written += write_page_view_batch(buffer, key)
    PageViewFlush.objects.filter(
        at__lt=timezone.now() - timedelta(days=PAGE_VIEW_MARK_DAYS)
    ).delete()
    return written


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def read_page_view_batch(buffer: redis.Redis, key: str) -> Counter[tuple[date, str]]:
    counts: Counter[tuple[date, str]] = Counter()
    for field, n in buffer.hgetall(key).items():
        day, _, path = _text(field).partition(" ")
        try:
            counts[(date.fromisoformat(day), path)] += int(n)
        except ValueError:
            continue  # not one of ours
    return counts


def write_page_view_batch(buffer: redis.Redis, key: str) -> int:
    """Write one batch and its mark in one transaction, then delete it; a batch already
    marked (written by a flush killed before it could delete it, or by another flush at
    the same time) is only deleted. Returns the views written."""
    counts = read_page_view_batch(buffer, key)
    written = 0
    try:
        with transaction.atomic():
            PageViewFlush.objects.create(batch=key.removeprefix(PAGE_VIEW_BATCH), at=timezone.now())
            _add_page_views(counts)
            written = sum(counts.values())
    except IntegrityError:
        written = 0  # its mark is there: written already
    pipe = buffer.pipeline(transaction=True)
    pipe.delete(key)
    pipe.srem(PAGE_VIEW_BATCHES, key)
    pipe.execute()
    return written


def set_third_party_active(party: ThirdParty, *, active: bool) -> ThirdParty:
    """Switch a third party off (its tag stops at once) or back on."""
    ThirdParty.objects.filter(pk=party.pk).update(active=active)
    party.active = active
    return party
