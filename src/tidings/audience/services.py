"""Every write of the customer's audience goes through here (DESIGN principle 2).

Functions take the account (or an object that belongs to it) first, so a caller can
never touch another tenant's rows by passing an id.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.accounts.models import Account
from tidings.audience import attribute_types
from tidings.audience.errors import AudienceError
from tidings.audience.lookups import ATTRIBUTE_KEY
from tidings.audience.mailability import OPTED_OUT, is_suppressed
from tidings.audience.models import (
    AudienceSettings,
    ConsentProof,
    Contact,
    ContactAttribute,
    ContactChange,
    MailingList,
    Subscription,
    SuppressedContact,
    editable_attributes_key,
)
from tidings.core import addresses
from tidings.core.datamap import Contacts
from tidings.core.digests import email_digest as contact_digest
from tidings.core.text import NUL_REFUSED, nul_at
from tidings.privacy import contacts as privacy_contacts


class InvalidEmail(AudienceError):
    pass


class Suppressed(AudienceError):
    """The address is on the account's suppression list and no new consent was given."""


def normalise_email(raw: str) -> str:
    """The form under which an address is stored and compared (`core.addresses`: the
    local part lower-cased, the domain in its IDNA form); InvalidEmail when it is not one."""
    try:
        return addresses.normalise_email(raw)
    except addresses.InvalidAddress as error:
        raise InvalidEmail(str(error)) from None


def suppress(account: Account, email: str, reason: str) -> None:
    SuppressedContact.objects.get_or_create(
        account=account, digest=contact_digest(email), defaults={"reason": reason}
    )


def add_contact(
    account: Account,
    email: str,
    *,
    name: str = "",
    attributes: dict[str, Any] | None = None,
    tags: Iterable[str] = (),
    lists: Iterable[MailingList] = (),
    legal_basis: str = Contact.LegalBasis.CONSENT,
    basis_at: datetime | None = None,
    source: str = Contact.Source.MANUAL,
    confirmed: bool = True,
    proof: dict[str, Any] | None = None,
    new_consent: bool = False,
) -> Contact:
    """Create a contact, or add the lists to an existing one, with the proof of consent.

    An address the account suppressed (erased, unsubscribed, complained, bounced) comes
    back only with `new_consent=True`: the person has just proven a fresh consent
    (a confirmed double opt-in). Otherwise `Suppressed` is raised and nothing changes.
    """
    address = normalise_email(email)
    attributes = attribute_types.typed_attributes(account, clean_attributes(attributes or {}))
    now = timezone.now()
    with transaction.atomic():
        contact = Contact.objects.select_for_update().filter(account=account, email=address).first()
        sticky = contact is not None and contact.status in OPTED_OUT
        if (is_suppressed(account, address) or sticky) and not new_consent:
            raise Suppressed(
                _("%(address)s asked not to be mailed; it needs a new consent.")
                % {"address": address}
            )
        if contact is None:
            contact = Contact.objects.create(
                account=account,
                email=address,
                name=name.strip(),
                attributes=attributes,
                tags=sorted(set(tags)),
                legal_basis=legal_basis,
                basis_at=basis_at or now,
                source=source,
            )
        else:
            revived = new_consent and contact.status in OPTED_OUT
            # A pending form signup that the customer adds with a basis of their own.
            if revived or contact.status == Contact.Status.UNCONFIRMED:
                contact.status = Contact.Status.ACTIVE
                contact.legal_basis = legal_basis
                contact.basis_at = basis_at or now
            contact.updated_at = now
            contact.save(update_fields=["status", "legal_basis", "basis_at", "updated_at"])
        if new_consent:
            SuppressedContact.objects.filter(
                account=account, digest=contact_digest(address)
            ).delete()
        for mailing_list in lists:
            check_same_account(account, mailing_list)
            subscribe(contact, mailing_list, confirmed=confirmed, new_consent=new_consent)
        if proof is not None:
            # An unconfirmed subscription's proof waits for the double opt-in.
            proof = {"double_optin": not confirmed, **proof}
            ConsentProof.objects.create(contact=contact, legal_basis=legal_basis, **proof)
    return contact


def subscribe(
    contact: Contact, mailing_list: MailingList, *, confirmed: bool, new_consent: bool = False
) -> Subscription:
    """Put the contact on a list; an unconfirmed one waits for the double opt-in.

    A contact who left this list stays off it (P21) unless `new_consent` says they have
    just proven a fresh consent: the customer cannot put them back.
    """
    check_same_account(contact.account, mailing_list)
    now = timezone.now()
    status = Subscription.Status.CONFIRMED if confirmed else Subscription.Status.UNCONFIRMED
    sub, created = Subscription.objects.get_or_create(
        contact=contact,
        mailing_list=mailing_list,
        defaults={"status": status, "confirmed_at": now if confirmed else None},
    )
    left = sub.status == Subscription.Status.UNSUBSCRIBED
    if not created and sub.status != Subscription.Status.CONFIRMED and (new_consent or not left):
        sub.status = status
        sub.confirmed_at = now if confirmed else None
        sub.unsubscribed_at = None
        sub.save(update_fields=["status", "confirmed_at", "unsubscribed_at"])
    return sub


def confirm_subscriptions(contact: Contact, lists: Iterable[MailingList]) -> None:
    """The contact clicked the double opt-in link: a new, proven consent.

    Their subscriptions to `lists` become confirmed (even to a list they had left), a
    contact waiting for confirmation, or one who had unsubscribed, bounced or complained,
    becomes active, and the address leaves the suppression list. A blocklist stays: it
    is the customer's decision. The waiting proofs of consent get their confirmation time.
    """
    lists = list(lists)
    for mailing_list in lists:
        check_same_account(contact.account, mailing_list)
    now = timezone.now()
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        if contact.status == Contact.Status.UNCONFIRMED or contact.status in OPTED_OUT:
            contact.status = Contact.Status.ACTIVE
            contact.legal_basis = Contact.LegalBasis.CONSENT
            contact.basis_at = now
            contact.updated_at = now
            contact.save(update_fields=["status", "legal_basis", "basis_at", "updated_at"])
        SuppressedContact.objects.filter(
            account_id=contact.account_id, digest=contact_digest(contact.email)
        ).delete()
        for mailing_list in lists:
            sub, created = Subscription.objects.get_or_create(
                contact=contact,
                mailing_list=mailing_list,
                defaults={"status": Subscription.Status.CONFIRMED, "confirmed_at": now},
            )
            if not created and sub.status != Subscription.Status.CONFIRMED:
                sub.status = Subscription.Status.CONFIRMED
                sub.confirmed_at = now
                sub.unsubscribed_at = None
                sub.save(update_fields=["status", "confirmed_at", "unsubscribed_at"])
        ConsentProof.objects.filter(
            Q(mailing_list__in=lists) | Q(mailing_list__isnull=True),
            contact=contact,
            double_optin=True,
            confirmed_at__isnull=True,
        ).update(confirmed_at=now)


def unsubscribe(contact: Contact, mailing_list: MailingList | None = None) -> int:
    """Take the contact off one list, or off every list and out of all mail when
    `mailing_list` is None. Takes effect at once; returns the subscriptions ended."""
    now = timezone.now()
    with transaction.atomic():
        subs = Subscription.objects.filter(contact=contact).exclude(
            status=Subscription.Status.UNSUBSCRIBED
        )
        if mailing_list is not None:
            check_same_account(contact.account, mailing_list)
            subs = subs.filter(mailing_list=mailing_list)
        ended = subs.update(status=Subscription.Status.UNSUBSCRIBED, unsubscribed_at=now)
        if mailing_list is None and contact.status == Contact.Status.ACTIVE:
            set_status(contact, Contact.Status.UNSUBSCRIBED)
    return ended


def set_status(contact: Contact, status: str) -> Contact:
    """Bounced, complained, blocklisted or unsubscribed: the contact is not mailed again
    from this moment on (the sending engine checks the status before each message)."""
    if status not in Contact.Status.values:
        raise AudienceError(_("Unknown contact status: %(status)s") % {"status": repr(status)})
    Contact.objects.filter(pk=contact.pk).update(status=status, updated_at=timezone.now())
    contact.status = status
    return contact


ERASED_ANSWER = "All the data we held on you has been erased."


def contacts_ref(account_id: int, contacts: Iterable[Contact]) -> Contacts:
    """Some of an account's contacts as the data map reaches them (privacy.contacts)."""
    rows = list(contacts)
    return Contacts(
        account_id=account_id,
        ids=tuple(c.pk for c in rows),
        emails=tuple(c.email for c in rows),
        digests=tuple(c.digest or contact_digest(c.email) for c in rows),
        since=min((c.created_at for c in rows), default=None),
    )


def erase_contact(contact: Contact) -> None:
    """Delete the contact and everything about them, table by table as the data map
    says (privacy.contacts.erase); keep only the keyed hash of the address so this
    account never mails them again without a new consent, and their part in campaign
    reports only as anonymous counts."""
    with transaction.atomic():
        privacy_contacts.erase(contacts_ref(contact.account_id, [contact]))


def check_same_account(account: Account, mailing_list: MailingList) -> None:
    if mailing_list.account_id != account.pk:
        raise AudienceError(_("That list belongs to another account."))


# --- Contacts edited by the customer -------------------------------------------------

MAX_ATTRIBUTES = 100
MAX_TAGS = 100
MAX_TEXT = 1000


def check_attribute_name(key: str) -> str:
    """The one rule for an attribute's name, wherever it comes from (a form, the API, an
    import's header or JSON column): letters, digits, spaces, dots, dashes, underscores.
    So no name can start a spreadsheet formula or reach a JSON path unquoted."""
    key = str(key).strip()
    if not ATTRIBUTE_KEY.fullmatch(key) or "__" in key:
        raise AudienceError(
            _(
                "“%(key)s” is not an attribute name: use up to 64 letters, digits, "
                "spaces, dots, dashes or underscores (no double underscore)."
            )
            % {"key": key[:70]}
        )
    return key


def check_attribute_value(key: str, value: Any) -> Any:
    """The one rule for an attribute's value: a JSON scalar (text of at most MAX_TEXT
    characters, a finite number, true/false; dates as ISO text), never a list or object."""
    if isinstance(value, float) and not math.isfinite(value):
        raise AudienceError(_("The attribute “%(key)s” must be a finite number.") % {"key": key})
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise AudienceError(
            _("The attribute “%(key)s” is longer than %(MAX_TEXT)s characters.")
            % {"key": key, "MAX_TEXT": MAX_TEXT}
        )
    if not isinstance(value, str | int | float | bool):
        raise AudienceError(
            _("The attribute “%(key)s” must be text, a number, true/false or a date.")
            % {"key": key}
        )
    return value


def clean_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """Attributes as stored: at most MAX_ATTRIBUTES, each name and value checked by the
    rules above. Raises AudienceError naming the first fault. Every path that writes
    attributes (forms, the API, the preference page, imports) goes through here."""
    if not isinstance(attributes, dict):
        raise AudienceError(_("Attributes must be a set of names and values."))
    if len(attributes) > MAX_ATTRIBUTES:
        raise AudienceError(
            _("A contact can have at most %(MAX_ATTRIBUTES)s attributes.")
            % {"MAX_ATTRIBUTES": MAX_ATTRIBUTES}
        )
    if nul_at(attributes) is not None:
        raise AudienceError(str(NUL_REFUSED))
    cleaned: dict[str, Any] = {}
    for key, value in attributes.items():
        name = check_attribute_name(key)
        cleaned[name] = check_attribute_value(name, value)
    return cleaned


def clean_name(name: str) -> str:
    """A contact's name as stored; raises AudienceError when it cannot be."""
    if nul_at(name) is not None:
        raise AudienceError(str(NUL_REFUSED))
    if len(name.strip()) > 200:
        raise AudienceError(_("A name can have at most 200 characters."))
    return name.strip()


def clean_tags(tags: Iterable[str]) -> list[str]:
    if isinstance(tags, str):
        raise AudienceError(_("Tags must be a list of words, not one text."))
    cleaned = set()
    for tag in tags:
        if not isinstance(tag, str):
            raise AudienceError(_("Each tag must be text."))
        if nul_at(tag) is not None:
            raise AudienceError(str(NUL_REFUSED))
        tag = tag.strip()
        if not tag:
            continue
        if len(tag) > 64 or "," in tag:
            raise AudienceError(
                _("“%(tag)s” is not a tag: up to 64 characters, no comma.") % {"tag": tag[:70]}
            )
        cleaned.add(tag)
    if len(cleaned) > MAX_TAGS:
        raise AudienceError(
            _("A contact can have at most %(MAX_TAGS)s tags.") % {"MAX_TAGS": MAX_TAGS}
        )
    return sorted(cleaned)


# The statuses a customer may choose on a contact. The others are the contact's own
# decision or a fact of delivery: an unsubscription, a complaint or a bounce is never
# undone by the customer (P21), and a pending signup waits for the contact.
CUSTOMER_STATUSES = (
    Contact.Status.ACTIVE,
    Contact.Status.BLOCKLISTED,
    Contact.Status.UNSUBSCRIBED,
)


def update_contact(
    contact: Contact,
    *,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    status: str | None = None,
) -> Contact:
    """The customer changes a contact: each argument left None stays as it is.
    Everything is checked first; on any fault nothing is saved."""
    fields = ["updated_at"]
    before = (contact.name, dict(contact.attributes))
    if name is not None:
        contact.name = clean_name(name)
        fields.append("name")
    if attributes is not None:
        contact.attributes = attribute_types.typed_attributes(
            contact.account_id, clean_attributes(attributes)
        )
        fields.append("attributes")
    if tags is not None:
        contact.tags = clean_tags(tags)
        fields.append("tags")
    if status is not None and status != contact.status:
        _check_customer_status(contact, status)
    with transaction.atomic():
        contact.updated_at = timezone.now()
        contact.save(update_fields=fields)
        record_change(contact, *before, at=contact.updated_at)
        if status == Contact.Status.UNSUBSCRIBED and contact.status != status:
            unsubscribe(contact)
        elif status is not None and status != contact.status:
            set_status(contact, status)
    return contact


def _check_customer_status(contact: Contact, status: str) -> None:
    if status not in CUSTOMER_STATUSES:
        raise AudienceError(
            _(
                "You cannot set a contact to “%(status)s”: choose active, blocklisted or "
                "unsubscribed."
            )
            % {"status": status}
        )
    if status == Contact.Status.ACTIVE and contact.status != Contact.Status.BLOCKLISTED:
        label = Contact.Status(contact.status).label
        raise AudienceError(
            _(
                "%(email)s is %(label)s: only the contact can undo that, by subscribing "
                "again through a form and confirming."
            )
            % {"email": contact.email, "label": label}
        )
    if status == Contact.Status.BLOCKLISTED and contact.status in OPTED_OUT:
        label = Contact.Status(contact.status).label
        raise AudienceError(
            _("%(email)s is %(label)s and receives no mail already.")
            % {"email": contact.email, "label": label}
        )


def blocklist(contact: Contact) -> Contact:
    """The customer never wants to mail this contact (spam trap, abuse, own request)."""
    if contact.status in OPTED_OUT or contact.status == Contact.Status.BLOCKLISTED:
        return contact
    return set_status(contact, Contact.Status.BLOCKLISTED)


def add_to_list(contact: Contact, mailing_list: MailingList, *, note: str = "") -> Subscription:
    """The customer puts an existing contact on a list, on the contact's legal basis.
    Someone who left that list, or left everything, is not put back (P21)."""
    check_same_account(contact.account, mailing_list)
    if contact.status in OPTED_OUT:
        label = Contact.Status(contact.status).label
        raise Suppressed(
            _("%(email)s is %(label)s: only a new consent brings them back.")
            % {"email": contact.email, "label": label}
        )
    with transaction.atomic():
        sub = subscribe(contact, mailing_list, confirmed=True)
        if sub.status == Subscription.Status.UNSUBSCRIBED:
            raise Suppressed(
                _(
                    "%(email)s left “%(name)s”: only a new consent, from a "
                    "subscription form, puts them back on it."
                )
                % {"email": contact.email, "name": mailing_list.name}
            )
        ConsentProof.objects.create(
            contact=contact,
            mailing_list=mailing_list,
            method=ConsentProof.Method.MANUAL,
            legal_basis=contact.legal_basis,
            note=note[:500] or "added to the list by the customer",
        )
    return sub


def remove_from_list(contact: Contact, mailing_list: MailingList) -> bool:
    """The customer takes a contact off a list. The record of a contact's own
    unsubscription is kept, so they cannot be put back by mistake."""
    check_same_account(contact.account, mailing_list)
    deleted, _kinds = (
        Subscription.objects.filter(contact=contact, mailing_list=mailing_list)
        .exclude(status=Subscription.Status.UNSUBSCRIBED)
        .delete()
    )
    return deleted > 0


def set_preferences(
    contact: Contact,
    *,
    name: str,
    attributes: dict[str, Any],
    allow_tracking: bool,
    allow_profiling: bool,
) -> Contact:
    """The contact's own changes on their preference page: their name, the attributes
    the customer lets them edit (other keys are ignored), and their objections to
    tracking and profiling (P18, P21)."""
    editable = set(editable_attributes(contact.account))
    before = (contact.name, dict(contact.attributes))
    merged = dict(contact.attributes)
    for key, value in attributes.items():
        if key not in editable:
            continue
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    contact.attributes = attribute_types.typed_attributes(
        contact.account_id, clean_attributes(merged)
    )
    contact.name = clean_name(name)
    contact.allow_tracking = allow_tracking
    contact.allow_profiling = allow_profiling
    contact.updated_at = timezone.now()
    with transaction.atomic():
        contact.save(
            update_fields=["name", "attributes", "allow_tracking", "allow_profiling", "updated_at"]
        )
        record_change(contact, *before, at=contact.updated_at)
    return contact


def changed_fields(
    before_name: str, before_attributes: dict[str, Any], contact: Contact
) -> list[str]:
    """The names of the profile fields that differ from before: "name", and
    "attributes.<key>" for each attribute added, changed or removed (the import's SQL
    form is in transfer.writers)."""
    changed = ["name"] if contact.name != before_name else []
    keys = set(before_attributes) | set(contact.attributes)
    changed += [
        f"attributes.{key}"
        for key in sorted(keys)
        if before_attributes.get(key) != contact.attributes.get(key)
    ]
    return changed


def record_change(
    contact: Contact,
    before_name: str,
    before_attributes: dict[str, Any],
    *,
    at: datetime,
) -> ContactChange | None:
    """Note which profile fields of `contact` changed (names only, never values), in the
    caller's transaction: what outgoing webhooks tell as contact.updated."""
    fields = changed_fields(before_name, before_attributes, contact)
    if not fields:
        return None
    return ContactChange.objects.create(
        account_id=contact.account_id, contact=contact, fields=fields, at=at
    )


# --- Lists, forms and settings -----------------------------------------------------


# How long an account's editable attributes are kept at most (a save forgets them).
EDITABLE_ATTRIBUTES_SECONDS = 300


def editable_attributes(account: Account) -> list[str]:
    """The attribute names the account's contacts may edit on their preference page;
    with Redis kept in the cache (a cache in the database is a statement too)."""
    key = editable_attributes_key(account.pk) if settings.REDIS_URL else None
    try:
        if key is not None and (kept := cache.get(key)) is not None:
            return list(kept)
    except redis.RedisError:
        key = None  # Redis is away: read from the database, as without it
    row = (
        AudienceSettings.objects.filter(account_id=account.pk)
        .values_list("editable_attributes", flat=True)
        .first()
    )
    found = list(row) if row else []
    if key is not None:
        with contextlib.suppress(redis.RedisError):
            cache.set(key, found, EDITABLE_ATTRIBUTES_SECONDS)
    return found


# Contacts read and rewritten at a time when a declaration converts existing values.
CONVERT_BATCH = 2_000


def declare_attributes(
    account: Account | int, wanted: dict[str, str], *, convert: bool = True
) -> dict[str, str]:
    """Declare attribute names with their types (text, number, date, yes/no). One
    already declared keeps its type: asking for another is refused, nothing changes.

    The values contacts already hold for a newly declared name are checked first (a
    value that does not fit refuses the declaration, naming it) and then rewritten in
    the type's form (`convert_existing`), unless `convert` is False: the import does
    that in its worker, not in the web request."""
    checked = check_declarations(account, wanted, existing=True)
    account_id = account if isinstance(account, int) else account.pk
    declared = attribute_types.types_of(account_id)
    with transaction.atomic():
        ContactAttribute.objects.bulk_create(
            [ContactAttribute(account_id=account_id, key=k, kind=v) for k, v in checked.items()],
            ignore_conflicts=True,
        )
        if convert:
            for key, kind in checked.items():
                if key not in declared:
                    convert_existing(account_id, key, kind)
    return checked


def _holding(account_id: int, key: str) -> QuerySet[Contact]:
    return Contact.objects.filter(account_id=account_id, attributes__has_key=key).order_by("pk")


def misfits(account_id: int, key: str, kind: str) -> tuple[int, str]:
    """How many of the account's contacts hold a value of `key` that does not fit
    `kind`, and the first such value."""
    count, first = 0, ""
    rows = _holding(account_id, key).values_list("attributes", flat=True)
    for attributes in rows.iterator(chunk_size=CONVERT_BATCH):
        try:
            attribute_types.convert(kind, attributes.get(key))
        except attribute_types.AttributeValueError:
            count += 1
            first = first or str(attributes.get(key))[:40]
    return count, first


def convert_existing(account_id: int, key: str, kind: str) -> int:
    """Rewrite the values of `key` that contacts already hold in `kind`'s form (those
    that do not fit stay as they are); the number of contacts changed. In batches by id."""
    changed = 0
    after = 0
    while True:
        batch = list(_holding(account_id, key).filter(pk__gt=after)[:CONVERT_BATCH])
        if not batch:
            return changed
        after = batch[-1].pk
        rewritten = []
        for contact in batch:
            value = contact.attributes.get(key)
            try:
                typed = attribute_types.convert(kind, value)
            except attribute_types.AttributeValueError:
                continue
            if typed != value or type(typed) is not type(value):
                contact.attributes = {**contact.attributes, key: typed}
                rewritten.append(contact)
        Contact.objects.bulk_update(rewritten, ["attributes"])
        changed += len(rewritten)


def check_declarations(
    account: Account | int, wanted: dict[str, str], *, existing: bool = False
) -> dict[str, str]:
    """`wanted` (name -> type) checked against the name rule and the account's
    declarations; with `existing`, also against the values contacts already hold for a
    name not declared yet. AudienceError names the first fault."""
    account_id = account if isinstance(account, int) else account.pk
    declared = attribute_types.types_of(account_id)
    checked: dict[str, str] = {}
    for key, kind in wanted.items():
        name = check_attribute_name(key)
        if kind not in attribute_types.KINDS:
            raise AudienceError(_("“%(kind)s” is not an attribute type.") % {"kind": kind[:20]})
        if name in declared and declared[name] != kind:
            raise AudienceError(
                _(
                    "The attribute “%(key)s” is declared as %(declared)s: keep that type, "
                    "or choose another attribute name."
                )
                % {"key": name, "declared": attribute_types.KIND_LABELS[declared[name]]}
            )
        if existing and name not in declared and kind != attribute_types.TEXT:
            count, first = misfits(account_id, name, kind)
            if count:
                raise AudienceError(
                    _(
                        "%(count)s of your contacts hold a value of “%(key)s” that is not a "
                        "%(kind)s (for example “%(value)s”): correct them first, or keep "
                        "“%(key)s” as text."
                    )
                    % {
                        "count": count,
                        "key": name,
                        "kind": attribute_types.KIND_LABELS[kind],
                        "value": first,
                    }
                )
        checked[name] = kind
    return checked
