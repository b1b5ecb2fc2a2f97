"""Every write of the consent app: cookie choices, third-party announcements, page counts."""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account, User
from tidings.consent.models import OPTIONAL, TRACKING, Category, ConsentRecord, PageView, ThirdParty
from tidings.core.mail import send_templated


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
    return list(ThirdParty.objects.filter(active=True, effective_at__gt=now))


def count_page_view(path: str, day: date | None = None) -> None:
    """Add one to the day's counter of a page: the only thing kept about a visit (P26)."""
    day = day or timezone.localdate()
    path = path[:500]
    counter = PageView.objects.filter(day=day, path=path)
    if counter.update(count=F("count") + 1):
        return
    try:
        with transaction.atomic():
            PageView.objects.create(day=day, path=path, count=1)
    except IntegrityError:
        counter.update(count=F("count") + 1)


def set_third_party_active(party: ThirdParty, *, active: bool) -> ThirdParty:
    """Switch a third party off (its tag stops at once) or back on."""
    ThirdParty.objects.filter(pk=party.pk).update(active=active)
    party.active = active
    return party
