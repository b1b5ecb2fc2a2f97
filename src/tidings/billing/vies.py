"""Asking the EU's VIES service whether a business buyer's VAT number is registered for
trade within the EU, before an order is invoiced under the reverse charge.

VIES answers three ways, and each is recorded on the order (VatCheck) with its date:
- valid: the reverse charge applies; the consultation number VIES gives (when the
  operator's own VAT number is sent as the requester) is the proof kept for the tax
  authority, printed on the invoice;
- not valid: the order is refused with the reason, so the buyer corrects the number or
  leaves it out and pays VAT;
- no answer (VIES or a member state's service down, busy, slow): the number is never
  taken as valid. The order goes ahead with VAT, the check stays pending and is retried
  (`retry_pending`) until VIES answers, so the record says what VIES said and when.

The REST interface (https://ec.europa.eu/taxation_customs/vies/#/technical-information):
POST {TIDINGS_VIES_URL}/check-vat-number with the country code and the number; the answer
is JSON with `valid`, `requestDate` and, for a requester, `requestIdentifier`; a service
that cannot answer says so in `errorWrappers` (MS_UNAVAILABLE, TIMEOUT, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone
from stdnum.eu import vat as eu_vat

from tidings.billing.models import Order, VatCheck

# Retries of a pending check: after 10 min, then doubling, for about two days.
FIRST_RETRY = timedelta(minutes=10)
MAX_ATTEMPTS = 9


@dataclass(frozen=True)
class Answer:
    status: str  # "valid", "invalid" or "pending"
    consultation: str = ""
    error: str = ""


def _split(number: str) -> tuple[str, str]:
    compact = str(eu_vat.compact(number))
    return compact[:2].upper(), compact[2:]


def ask(number: str) -> Answer:
    """What VIES says of `number` now ("pending" when it cannot say)."""
    country, rest = _split(number)
    body: dict[str, Any] = {"countryCode": country, "vatNumber": rest}
    requester = settings.OPERATOR.get("vat_number", "")
    if requester and eu_vat.is_valid(requester):
        body["requesterMemberStateCode"], body["requesterNumber"] = _split(requester)
    url = settings.BILLING["vies_url"].rstrip("/") + "/check-vat-number"
    try:
        response = requests.post(url, json=body, timeout=settings.BILLING["vies_timeout"])
        data = response.json()
    except (requests.RequestException, ValueError) as error:
        return Answer("pending", error=type(error).__name__[:60])
    errors = data.get("errorWrappers") if isinstance(data, dict) else None
    if errors or not isinstance(data, dict) or not isinstance(data.get("valid"), bool):
        code = str((errors or [{}])[0].get("error", "")) if errors else ""
        return Answer("pending", error=(code or f"HTTP {response.status_code}")[:60])
    if not data["valid"]:
        return Answer("invalid")
    return Answer("valid", consultation=str(data.get("requestIdentifier") or "")[:64])


def next_try(attempts: int, now: datetime | None = None) -> datetime | None:
    """When a pending check is asked again after `attempts` tries (None: given up)."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return (now or timezone.now()) + FIRST_RETRY * 2 ** (attempts - 1)


def record(order: Order, answer: Answer, now: datetime | None = None) -> VatCheck:
    """What VIES said of `order`'s number, recorded on it (a pending answer is asked
    again by `services.retry_vies_checks`)."""
    now = now or timezone.now()
    pending = answer.status == VatCheck.Status.PENDING
    return VatCheck.objects.create(
        order=order,
        status=answer.status,
        requested_at=now,
        checked_at=None if pending else now,
        consultation=answer.consultation,
        error=answer.error,
        next_try_at=next_try(1, now) if pending else None,
    )
