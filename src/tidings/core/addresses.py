"""Email addresses: the one normalisation, built on email-validator.

An address is checked for its syntax only (never a DNS query) and written in one form:
the local part as given (NFC), the domain in its IDNA (ASCII) form. Tidings compares
addresses case-insensitively, so the form it stores (contacts, users) is that one in
lower case; the pipeline sends to the address with its local part as given.

The keyed digest of an address (`core.digests.email_digest`) keeps its own trimming and
lower-casing: digests already stored must keep matching.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from email_validator import EmailNotValidError, validate_email


class InvalidAddress(ValueError):
    """Not an email address; the message says why."""


def mailbox(raw: str) -> str:
    """The address to send to: local part as given, domain in IDNA form. Raises
    InvalidAddress when `raw` (trimmed) is not an address."""
    text = (raw or "").strip()
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as error:
        raise InvalidAddress(
            _("“%(text)s” is not a valid email address: %(error)s")
            % {"text": text[:80], "error": error}
        ) from None
    local, _at, _domain = result.normalized.rpartition("@")
    return f"{local}@{result.ascii_domain or result.domain}"


def normalise_email(raw: str) -> str:
    """The form an address is stored and compared in: `mailbox` in lower case.
    Raises InvalidAddress."""
    return mailbox(raw).lower()


def canonical(raw: str) -> str:
    """The stored form of `raw` when it is an address, else `raw` trimmed and in lower
    case: for looking a login up, and for operator commands that accept local names
    (`admin@localhost`), never refusing."""
    try:
        return normalise_email(raw)
    except InvalidAddress:
        return (raw or "").strip().lower()
