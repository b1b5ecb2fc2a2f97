"""Writes of the sending settings an account manages: relays, DKIM domains, tracking
choice. Campaign actions are in `tidings.sending.engine`."""

from __future__ import annotations

import re

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account, User
from tidings.core import netguard
from tidings.sending.message import generate_dkim_key
from tidings.sending.models import Relay, SendingDomain, SendingSettings
from tidings.staff import audit

POSTAL_ADDRESS_MAX = 400

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class SettingsError(ValueError):
    """A settings change that cannot be made; the message says why."""


def settings_of(account: Account) -> SendingSettings:
    found, _created = SendingSettings.objects.get_or_create(account=account)
    return found


def set_tracking(account: Account, mode: str, *, unsubscribe_mailto: str = "") -> SendingSettings:
    if mode not in SendingSettings.Tracking.values:
        raise SettingsError(_("Choose per-contact or aggregate-only tracking."))
    found = settings_of(account)
    found.tracking = mode
    found.unsubscribe_mailto = unsubscribe_mailto.strip()
    found.full_clean()
    found.save()
    return found


def clean_postal_address(raw: str) -> str:
    """One line, parts separated by commas, as a footer shows it; refused when it cannot
    be a postal address (empty, too long, no street or box number nor postcode)."""
    parts = [" ".join(line.split()) for line in raw.replace("\r", "").split("\n")]
    address = ", ".join(p.strip(" ,") for p in parts if p.strip(" ,"))
    if not address:
        raise SettingsError(_("Give the postal address your campaigns show."))
    if len(address) > POSTAL_ADDRESS_MAX:
        raise SettingsError(
            _("A postal address is at most %(POSTAL_ADDRESS_MAX)s characters.")
            % {"POSTAL_ADDRESS_MAX": POSTAL_ADDRESS_MAX}
        )
    if not (re.search(r"\d", address) and re.search(r"[^\W\d_]", address)):
        raise SettingsError(
            _("A postal address has a street or box number or a postcode, and a place name.")
        )
    return address


def set_postal_address(account: Account, raw: str, *, by: User | None) -> SendingSettings:
    """The physical postal address printed in every campaign's footer (CAN-SPAM);
    required before a campaign can be sent. Audited."""
    address = clean_postal_address(raw)
    with transaction.atomic():
        found, _created = SendingSettings.objects.select_for_update().get_or_create(account=account)
        if found.postal_address == address:
            return found
        found.postal_address = address
        found.full_clean()
        found.save(update_fields=["postal_address"])
        audit.record(audit.AuditEvent.Action.UPDATE, found, by=by, fields=["postal_address"])
    return found


def postal_address_of(account: Account) -> str:
    found = SendingSettings.objects.filter(account=account).first()
    return found.postal_address if found is not None else ""


def add_sending_domain(
    account: Account | None, domain: str, *, selector: str = "tidings"
) -> SendingDomain:
    """A new DKIM key for `domain` (of `account`, or of the operator's own mail when
    None); publish `dns_value` at `dns_name` to use it."""
    name = domain.strip().lower().rstrip(".")
    try:
        name = name.encode("idna").decode()
    except UnicodeError:
        raise SettingsError(
            _("“%(domain)s” is not a domain name.") % {"domain": domain[:80]}
        ) from None
    if not _DOMAIN.match(name):
        raise SettingsError(_("“%(domain)s” is not a domain name.") % {"domain": domain[:80]})
    if not re.match(r"^[a-z0-9][a-z0-9-]{0,62}$", selector):
        raise SettingsError(_("A selector is letters, digits and dashes."))
    private, public = generate_dkim_key()
    try:
        with transaction.atomic():
            return SendingDomain.objects.create(
                account=account,
                domain=name,
                selector=selector,
                private_key=private,
                public_key=public,
            )
    except IntegrityError:
        raise SettingsError(
            _("%(name)s is already one of your sending domains.") % {"name": name}
        ) from None


def remove_sending_domain(domain: SendingDomain) -> None:
    domain.delete()


def check_relay_host(host: str, port: int) -> None:
    """SettingsError when a customer's relay names a host Tidings will not connect to
    (loopback, private, link-local, metadata...; core.netguard), unless the operator
    allows it (TIDINGS_ALLOWED_RELAY_HOSTS). Checked again at every connection."""
    try:
        netguard.check_host(host, port, allow=settings.ALLOWED_RELAY_HOSTS)
    except netguard.ForbiddenHost as error:
        raise SettingsError(str(error)) from None


def save_relay(relay: Relay) -> Relay:
    """Save a relay; a customer's must name a public host (`check_relay_host`)."""
    if relay.rate_per_second > 10_000 or relay.max_connections > 100:
        raise SettingsError(_("That rate or number of connections is beyond what a relay takes."))
    if relay.account_id is not None:
        check_relay_host(relay.host, relay.port)
    relay.full_clean()
    relay.save()
    return relay


def remove_relay(relay: Relay) -> None:
    relay.delete()
