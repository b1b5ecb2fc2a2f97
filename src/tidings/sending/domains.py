"""Proof that a sending domain is the customer's, read from DNS (dnspython).

A customer's domain is used in From (`senders`) only while both are found:
1. ownership: a TXT record `tidings-verification=<token>` at `_tidings.<domain>` or at
   the domain itself (the token is shown on the sending settings page);
2. the DKIM key: a TXT record at `<selector>._domainkey.<domain>` whose `p=` is the
   public key Tidings holds.
SPF and DMARC are read and shown with their alignment (whether they would pass for
mail Tidings sends as that domain), but do not decide the proof.

Checked when the customer asks ("Check now") and again every
TIDINGS_DOMAIN_RECHECK_HOURS by the scheduler: a record that disappeared (the name or
the record no longer exists) loses the proof. A resolver that does not answer changes
nothing: the last verdict stands until DNS answers again.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.core.dns import DnsUnavailable, aligned, resolver, txt
from tidings.sending.models import SendingDomain

log = logging.getLogger(__name__)

# Domains one scheduled run checks at most (the next run takes the rest).
RECHECK_BATCH = 500


def _tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = "".join(value.split())
    return tags


def inspect(domain: SendingDomain) -> dict[str, Any]:
    """What DNS says about `domain` now (DnsUnavailable when it does not answer)."""
    using = resolver()
    name = domain.domain
    wanted = domain.proof_value
    ownership = any(
        record.strip() == wanted
        for record in txt(domain.proof_name, using=using) + txt(name, using=using)
    )
    dkim_records = txt(domain.dns_name, using=using)
    dkim = any(_tags(r).get("p") == domain.public_key for r in dkim_records)
    spf = next((r for r in txt(name, using=using) if r.lower().startswith("v=spf1")), "")
    dmarc = next(
        (r for r in txt(f"_dmarc.{name}", using=using) if r.lower().startswith("v=dmarc1")), ""
    )
    envelope = settings.SENDING["bounce_address"]
    envelope_domain = envelope.rpartition("@")[2] if envelope else name
    spf_aligned = bool(spf) and aligned(name, envelope_domain)
    return {
        "ownership": ownership,
        "dkim": dkim,
        "dkim_found": bool(dkim_records),
        "spf": spf[:500],
        "spf_aligned": spf_aligned,
        "dmarc": dmarc[:500],
        "dmarc_policy": _tags(dmarc).get("p", "") if dmarc else "",
        # DKIM signs with d=<domain>: aligned with the From whenever the key is found.
        "dmarc_aligned": bool(dmarc) and (dkim or spf_aligned),
        "error": "",
    }


def check_domain(domain: SendingDomain) -> SendingDomain:
    """Check `domain`'s records now and record the verdict: proven while ownership and
    the DKIM key are both found; an unanswered query keeps the last verdict."""
    now = timezone.now()
    try:
        found = inspect(domain)
    except DnsUnavailable as error:
        status = {
            **domain.dns_status,
            "error": _("DNS did not answer: %(error)s") % {"error": error},
        }
        SendingDomain.objects.filter(pk=domain.pk).update(dns_status=status, checked_at=now)
        domain.dns_status, domain.checked_at = status, now
        return domain
    proven = found["ownership"] and found["dkim"]
    if proven:
        proven_at = domain.proven_at or now
    else:
        proven_at = None
        if domain.proven_at is not None:
            log.info("sending domain %s lost its proof", domain.pk)
    SendingDomain.objects.filter(pk=domain.pk).update(
        dns_status=found, checked_at=now, proven_at=proven_at
    )
    domain.dns_status, domain.checked_at, domain.proven_at = found, now, proven_at
    return domain


def recheck_domains(*, limit: int = RECHECK_BATCH) -> int:
    """The scheduler's: customers' domains not checked for TIDINGS_DOMAIN_RECHECK_HOURS,
    checked again (proven ones first lose their proof if a record is gone)."""
    cutoff = timezone.now() - timedelta(hours=settings.DOMAIN_RECHECK_HOURS)
    due = (
        SendingDomain.objects.filter(account__isnull=False)
        .filter(Q(checked_at__isnull=True) | Q(checked_at__lt=cutoff))
        .order_by("checked_at", "pk")[:limit]
    )
    checked = 0
    for domain in due:
        check_domain(domain)
        checked += 1
    return checked
