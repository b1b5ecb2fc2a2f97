"""Whether an inbound mail really comes from the address in its From (a verdict per
message). Anyone can write any From: a mail is tied to a customer's account, and
continues a customer's conversation, only when it is verified.

Verified means DMARC-style alignment, by one of three proofs:
1. a DKIM signature that verifies (dkimpy, the key read from DNS through the one
   resolver, core.dns) whose d= is the From's domain or a parent or child of it. This is
   how `tidings inbound` judges mail straight from the internet, and it holds for any
   source, since a signature cannot be forged;
2. an `Authentication-Results` header (RFC 8601) added by the operator's own MTA or
   provider, named by TIDINGS_INBOUND_AUTHSERV_ID: dmarc=pass for the From's domain, or
   dkim=pass with an aligned header.d. Only the topmost header with that authserv-id is
   read; one naming anyone else is ignored (a sender can write any header). Set the id
   only when that MTA stands in front of Tidings and removes such headers from incoming
   mail, as RFC 8601 section 5 asks of it.
3. an ARC chain (RFC 8617) sealed last by a forwarder the operator trusts, named in
   TIDINGS_INBOUND_ARC_SEALERS (the operator's own MX, a mailing-list host): mail that
   forwarder passed on usually lost its DKIM signature on the way (a footer, a new
   Subject). The chain must validate (dkimpy's arc_verify, keys through core.dns), its
   topmost ARC-Seal must be one of those domains, and that instance's
   ARC-Authentication-Results must say dmarc=pass for the From's domain, or dkim=pass
   aligned with it: what the trusted forwarder saw when the mail reached it. A chain
   sealed last by anyone else proves nothing (they could have changed the mail after a
   trusted hop).
A DNS that does not answer proves nothing: the mail is taken, unverified.
"""

from __future__ import annotations

import email.policy
import logging
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import getaddresses

import dkim
from django.conf import settings

from tidings.core import dns

log = logging.getLogger(__name__)

# Signatures looked at in one message at most (each may cost a DNS query).
MAX_SIGNATURES = 5
_COMMENT = re.compile(r"\([^()]*\)")


@dataclass(frozen=True)
class Verdict:
    verified: bool
    # How: "dkim" (our own check), "authentication-results" (the trusted MTA's), "arc"
    # (a trusted forwarder's sealed results), or why
    # not ("no aligned signature", "several From addresses", ...): for the log.
    how: str


def _from_domain(headers: EmailMessage) -> str | None:
    """The From's one domain, or None when there is not exactly one address (DMARC
    refuses to judge a message with several)."""
    values = headers.get_all("From") or []
    if len(values) != 1:
        return None
    found = [a for _n, a in getaddresses([str(values[0])]) if a]
    if len(found) != 1 or "@" not in found[0]:
        return None
    return found[0].rpartition("@")[2].lower().rstrip(".")


def _dns_txt(name: bytes, timeout: int = 5) -> bytes | None:
    """dkimpy's DNS lookup, through Tidings's resolver."""
    try:
        records = dns.txt(name.decode("ascii", errors="replace").rstrip("."))
    except dns.DnsUnavailable as error:
        raise dkim.DnsTimeoutError(str(error)) from None
    return records[0].encode() if records else None


def _dkim_aligned(raw: bytes, from_domain: str) -> bool:
    checker = dkim.DKIM(raw, timeout=settings.DNS_TIMEOUT_SECONDS)
    count = sum(1 for name, _v in checker.headers if name.lower() == b"dkim-signature")
    for index in range(min(count, MAX_SIGNATURES)):
        try:
            good = checker.verify(idx=index, dnsfunc=_dns_txt)
        except dkim.DKIMException as error:
            log.info("desk: a DKIM signature does not verify: %s", error)
            continue
        signer = (checker.domain or b"").decode("ascii", errors="replace")
        # A signature of the body's first l= bytes only lets anyone append to it.
        whole = b"l" not in (checker.signature_fields or {})
        if good and whole and dns.aligned(signer, from_domain):
            return True
    return False


def _results(value: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """An Authentication-Results value: its authserv-id, and each (method, result,
    properties) of it, comments removed."""
    text = " ".join(str(value).split())
    while _COMMENT.search(text):
        text = _COMMENT.sub(" ", text)
    parts = [p.strip() for p in text.split(";")]
    authserv = parts[0].split(" ")[0].strip().lower() if parts else ""
    results = []
    for part in parts[1:]:
        words = part.split()
        if not words or "=" not in words[0]:
            continue
        method, _sep, result = words[0].partition("=")
        props = {}
        for word in words[1:]:
            key, sep, prop = word.partition("=")
            if sep:
                props[key.lower()] = prop.strip('"').lower()
        results.append((method.lower(), result.lower(), props))
    return authserv, results


def _results_pass(results: list[tuple[str, str, dict[str, str]]], from_domain: str) -> bool:
    """dmarc=pass for the From's domain, or dkim=pass with a signer aligned with it."""
    for method, result, props in results:
        if result != "pass":
            continue
        if method == "dmarc" and props.get("header.from", from_domain) == from_domain:
            return True
        if method == "dkim":
            signer = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
            if signer and dns.aligned(signer, from_domain):
                return True
    return False


def _trusted_results_pass(headers: EmailMessage, from_domain: str) -> bool:
    trusted = settings.DESK_INBOUND_AUTHSERV_ID.strip().lower()
    if not trusted:
        return False
    for value in headers.get_all("Authentication-Results") or []:
        authserv, results = _results(str(value))
        if authserv != trusted:
            continue  # anyone's header, not our MTA's: it proves nothing
        return _results_pass(results, from_domain)  # only the topmost one of our MTA
    return False


def _arc_pass(raw: bytes, headers: EmailMessage, from_domain: str) -> bool:
    """A valid ARC chain whose last sealer is trusted, and whose results at that hop
    pass for the From's domain."""
    trusted = {d.strip().lower().rstrip(".") for d in settings.DESK_INBOUND_ARC_SEALERS}
    if not trusted or not headers.get_all("ARC-Seal"):
        return False
    try:
        cv, instances, why = dkim.arc_verify(
            raw, dnsfunc=_dns_txt, timeout=settings.DNS_TIMEOUT_SECONDS
        )
    except dkim.DKIMException as error:
        log.info("desk: an ARC chain could not be checked: %s", error)
        return False
    if cv != dkim.CV_Pass or not instances:
        log.info("desk: an ARC chain does not validate: %s", why)
        return False
    top = instances[0]  # arc_verify lists the instances from the newest
    sealer = bytes(top.get("as-domain") or b"").decode("ascii", "replace").lower().rstrip(".")
    if sealer not in trusted:
        log.info("desk: an ARC chain sealed last by %s, not a trusted forwarder", sealer)
        return False
    # That hop's ARC-Authentication-Results, as the verified seal covers it: "i=N;
    # authserv-id; method=result ...".
    aar = bytes(top.get("aar-value") or b"").decode("utf-8", "replace")
    _instance, _sep, rest = aar.partition(";")
    _authserv, results = _results(rest)
    return _results_pass(results, from_domain)


def check(raw: bytes) -> Verdict:
    """The verdict on one raw message (never raises on a message that parsed)."""
    headers = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(headers, EmailMessage)
    try:
        from_domain = _from_domain(headers)
    except (IndexError, ValueError):
        from_domain = None
    if from_domain is None:
        return Verdict(False, "not exactly one From address")
    if _trusted_results_pass(headers, from_domain):
        return Verdict(True, "authentication-results")
    try:
        if _dkim_aligned(raw, from_domain):
            return Verdict(True, "dkim")
    except dkim.DKIMException as error:
        log.info("desk: DKIM could not be checked: %s", error)
    if _arc_pass(raw, headers, from_domain):
        return Verdict(True, "arc")
    return Verdict(False, "no aligned DKIM signature nor trusted result")
