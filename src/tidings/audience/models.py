"""The customer's audience: contacts, lists, subscriptions and the proof of each consent.

This is the customer's application data: the customer is the controller, Tidings the
processor. Every row belongs to exactly one account, and every query starts from it
(DESIGN principle 5). Writes go through `tidings.audience.services`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from typing import Any

import redis
from django.core.cache import cache
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.core.digests import email_digest


class MailingList(models.Model):
    class Visibility(models.TextChoices):
        PUBLIC = "public", _("public (shown on subscription forms)")
        PRIVATE = "private", _("private (only added by the customer)")

    class OptIn(models.TextChoices):
        SINGLE = "single", _("single opt-in")
        DOUBLE = "double", _("double opt-in (the contact confirms by email)")

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="mailing_lists"
    )
    # The id that appears in public links and forms, never the sequential pk.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    visibility = models.CharField(
        max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    optin = models.CharField(max_length=8, choices=OptIn.choices, default=OptIn.DOUBLE)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="list_name_unique_per_account")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ContactManager(models.Manager["Contact"]):
    def bulk_create(self, objs: Iterable[Contact], *args: Any, **kwargs: Any) -> list[Contact]:
        """As Django's, with each contact's address digest filled in (see Contact.digest)."""
        objs = list(objs)
        for contact in objs:
            contact.fill_digest()
        return super().bulk_create(objs, *args, **kwargs)


class Contact(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        # Signed up through a double opt-in form and not confirmed yet: never mailed but
        # for the confirmation, and deleted when the confirmation window ends (P12).
        UNCONFIRMED = "unconfirmed", _("waiting for confirmation")
        UNSUBSCRIBED = "unsubscribed", _("unsubscribed from everything")
        BOUNCED = "bounced", _("bounced")
        COMPLAINED = "complained", _("marked as spam")
        BLOCKLISTED = "blocklisted", _("blocklisted")

    class LegalBasis(models.TextChoices):
        CONSENT = "consent", _("consent")
        CONTRACT = "contract", _("contract (existing customer)")

    class Source(models.TextChoices):
        FORM = "form", _("subscription form")
        IMPORT = "import", _("import")
        API = "api", _("API")
        MANUAL = "manual", _("added by hand")

    # No index of its own: (account, email) and (account, status) lead with it. A lone
    # account index misleads the planner when an account has just grown (migration
    # 0003_transfer_indexes) and costs every import a write per row.
    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="contacts", db_index=False
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Normalised by services.normalise_email: lower case, IDNA domain. Unique per account.
    email = models.CharField(max_length=320)
    # The keyed hash of the address (core.digests.email_digest), the form in which the
    # account's suppression list holds addresses: the mailability rule compares the two
    # in SQL (audience.mailability). Filled in by save() and bulk_create(); the import
    # writes the one it computed for the suppression check.
    digest = models.CharField(max_length=64, default="", editable=False)
    name = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    attributes = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    legal_basis = models.CharField(
        max_length=16, choices=LegalBasis.choices, default=LegalBasis.CONSENT
    )
    # When the consent (or contract) the basis rests on was given, as far as known.
    basis_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.MANUAL)
    # Soft bounces since the last delivered message (hard bounces set status at once).
    soft_bounces = models.PositiveIntegerField(default=0)
    # The contact's own objections (P18, P21): honoured by tracking and segments.
    allow_tracking = models.BooleanField(default=True)
    allow_profiling = models.BooleanField(default=True)
    # Restriction of processing (GDPR art. 18, P18): while set, the contact's data is
    # stored and nothing else: no mail but legal notices, no segment, no automation, no
    # export to a third party (audience.mailability, audience.restriction).
    restricted_at = models.DateTimeField(null=True, blank=True)
    restriction_reason = models.CharField(max_length=500, blank=True, default="")
    # The contact was told the restriction ends then (art. 18(3): told before it is lifted).
    restriction_lifts_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects: ContactManager = ContactManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "email"], name="contact_email_unique_per_account"
            )
        ]
        indexes = [
            models.Index(fields=["account", "status"], name="contact_account_status"),
            # A name is searched by a trigram (pg_trgm) index on PostgreSQL, made by
            # migration 0007_contact_name_trigram: Django cannot declare it for SQLite.
            # Browsing newest first by keyset (id), and date conditions of segments.
            models.Index(fields=["account", "id"], name="contact_account_id"),
            models.Index(fields=["account", "created_at"], name="contact_account_created"),
            # Restricted contacts are few: segments' counts subtract them by this index.
            models.Index(
                fields=["account"],
                condition=models.Q(restricted_at__isnull=False),
                name="contact_restricted",
            ),
        ]
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.fill_digest()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            self.digest = email_digest(self.email)
            kwargs["update_fields"] = {*update_fields, "digest"}
        super().save(*args, **kwargs)

    def fill_digest(self) -> None:
        if self.email and not self.digest:
            self.digest = email_digest(self.email)

    @property
    def is_restricted(self) -> bool:
        return self.restricted_at is not None

    @property
    def first_name(self) -> str:
        return self.name.split(" ", 1)[0] if self.name else ""


class ContactChange(models.Model):
    """Which fields of a contact's profile changed and when: the names only, never the
    values ("name", "email", "attributes.<key>"). Written by the services that change a
    profile (`services.update_contact`, `services.set_preferences`, an import that
    updates); read by outgoing webhooks (`contact.updated`) by the (account, at) index,
    so they never scan the contacts. Kept CHANGE_DAYS (audience.privacy), erased with
    the contact."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="changes")
    fields = models.JSONField(default=list)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["account", "at"], name="contact_change_account_at")]

    def __str__(self) -> str:
        return f"contact {self.contact_id} changed {', '.join(self.fields)}"


class Subscription(models.Model):
    class Status(models.TextChoices):
        UNCONFIRMED = "unconfirmed", _("waiting for confirmation")
        CONFIRMED = "confirmed", _("subscribed")
        UNSUBSCRIBED = "unsubscribed", _("unsubscribed")

    # Indexed by one_subscription_per_list (contact, mailing_list).
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="subscriptions", db_index=False
    )
    # Indexed by subscription_list_status (mailing_list, status).
    mailing_list = models.ForeignKey(
        MailingList, on_delete=models.CASCADE, related_name="subscriptions", db_index=False
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CONFIRMED)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    # The proof this subscription rests on when it is shared with other contacts' (one
    # per import: what the customer stated for the whole file). A proof of the contact's
    # own (a form, an API call) points at the contact instead; see ConsentProof.
    consent = models.ForeignKey(
        "ConsentProof",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="subscriptions",
        db_index=False,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "mailing_list"], name="one_subscription_per_list"
            )
        ]
        indexes = [
            models.Index(fields=["mailing_list", "status"], name="subscription_list_status"),
            # Whether a shared proof is still relied on (erasure), and the foreign key's
            # check when a proof is deleted.
            models.Index(
                fields=["consent"],
                condition=models.Q(consent__isnull=False),
                name="subscription_consent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} on {self.mailing_list_id}: {self.status}"


class ListCount(models.Model):
    """A change of a list's subscriptions in one status: the list's count in a status is
    the sum of its rows (audience.counters).

    Written by database triggers on audience_subscription (migration 0009_list_counts),
    so every way a subscription is written (the services, bulk actions, the import's
    COPY and INSERT ... SELECT, cascades, the erasure's plain deletes, raw SQL) keeps
    them in the same transaction. On PostgreSQL each statement appends a row per list
    and status it changed, so that two imports into one list never wait on one counter
    row; `counters.compact` folds them, `counters.recount` repairs them.
    """

    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE, related_name="counts")
    status = models.CharField(max_length=12, choices=Subscription.Status.choices)
    n = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["mailing_list", "status"], name="listcount_list_status")]

    def __str__(self) -> str:
        return f"{self.n:+} {self.status} on list {self.mailing_list_id}"


class ListGrowth(models.Model):
    """A change of a list's audience on one day (UTC): subscriptions that became
    confirmed (`subscribed`) and confirmed subscriptions that were unsubscribed
    (`unsubscribed`).
    The dashboard's growth chart is the sum of these rows (audience.growth).

    Written by database triggers on audience_subscription (migration 0011_list_growth),
    like ListCount: every write path keeps them, in the same transaction. On PostgreSQL
    each statement appends a row per list and day it changed; `growth.compact` folds
    them.
    """

    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    subscribed = models.BigIntegerField(default=0)
    unsubscribed = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["mailing_list", "day"], name="listgrowth_list_day")]

    def __str__(self) -> str:
        return f"list {self.mailing_list_id} on {self.day}: +{self.subscribed} -{self.unsubscribed}"


class SubscriptionForm(models.Model):
    """A hosted form (and its embeddable snippet) that subscribes people to lists."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="subscription_forms"
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    lists = models.ManyToManyField(MailingList, related_name="forms")
    # What the person agrees to; a new version whenever the text changes (proof, P22).
    consent_text = models.TextField()
    consent_version = models.PositiveIntegerField(default=1)
    thank_you_url = models.URLField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class ConsentProofManager(models.Manager["ConsentProof"]):
    def bulk_create(
        self, objs: Iterable[ConsentProof], *args: Any, **kwargs: Any
    ) -> list[ConsentProof]:
        """As Django's, with each proof's account taken from its contact."""
        objs = list(objs)
        for proof in objs:
            proof.fill_account()
        return super().bulk_create(objs, *args, **kwargs)


class ConsentProof(models.Model):
    """What a contact agreed to, how, when and from where (P2, P22).

    Most proofs are one contact's own (`contact` set: a form, an API call, the customer
    adding them by hand) and go with the contact. An import's proof is one for the whole
    file (`contact` empty: who stated it, when, the legal basis, the file's name and
    digest), referenced by every subscription the import wrote (`Subscription.consent`):
    it appears in each of those contacts' data, stays while one of them is left, and goes
    with the last one or with the account (audience.privacy).
    """

    class Method(models.TextChoices):
        FORM = "form", _("subscription form")
        IMPORT = "import", _("stated by the customer at import")
        API = "api", _("API")
        MANUAL = "manual", _("added by hand by the customer")

    # Indexed by consentproof_account (see Meta).
    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="consent_proofs", db_index=False
    )
    # Empty for a proof shared by the subscriptions that reference it (an import's).
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="consent_proofs"
    )
    # Indexed only where set (see Meta): an import writes a proof per contact with
    # neither, and an index of a million empty values would only slow it down.
    mailing_list = models.ForeignKey(
        MailingList,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    form = models.ForeignKey(
        SubscriptionForm,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    method = models.CharField(max_length=8, choices=Method.choices)
    legal_basis = models.CharField(max_length=16, choices=Contact.LegalBasis.choices)
    consent_text = models.TextField(blank=True, default="")
    consent_version = models.CharField(max_length=32, blank=True, default="")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True, default="")
    given_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # True when the consent must be confirmed from the mail (double opt-in): until
    # `confirmed_at` is set it proves nothing, and it is deleted when the window ends.
    double_optin = models.BooleanField(default=False, db_default=False)
    note = models.CharField(max_length=500, blank=True, default="")
    # An import's statement: who made it and when, and the file it covers.
    stated_by = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    stated_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=255, blank=True, default="")
    # SHA-256 of the imported file, as uploaded.
    file_digest = models.CharField(max_length=64, blank=True, default="")

    objects: ConsentProofManager = ConsentProofManager()

    class Meta:
        indexes = [
            models.Index(fields=["account"], name="consentproof_account"),
            models.Index(
                fields=["stated_by"],
                condition=models.Q(stated_by__isnull=False),
                name="consentproof_stated_by",
            ),
            models.Index(
                fields=["mailing_list"],
                condition=models.Q(mailing_list__isnull=False),
                name="consentproof_list",
            ),
            models.Index(
                fields=["form"], condition=models.Q(form__isnull=False), name="consentproof_form"
            ),
        ]

    def __str__(self) -> str:
        if self.contact_id is None:
            return f"consent stated for {self.source or 'an import'} ({self.method})"
        return f"consent of contact {self.contact_id} ({self.method})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.fill_account()
        super().save(*args, **kwargs)

    def fill_account(self) -> None:
        if self.account_id is None and self.contact is not None:
            self.account_id = self.contact.account_id

    @property
    def awaiting_confirmation(self) -> bool:
        return self.double_optin and self.confirmed_at is None


class Segment(models.Model):
    """A saved filter over the account's contacts, built from safe rules (never SQL)."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="segments"
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    # Validated by tidings.audience.segments before it is saved; see its docstring.
    rules = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ContactAttribute(models.Model):
    """An attribute name the account declared with a type (audience.attribute_types).

    Not personal data itself (a name and a type, chosen by the customer): the values
    stay in each contact's `attributes`, in the typed JSON form of this type."""

    class Kind(models.TextChoices):
        TEXT = "text", _("text")
        NUMBER = "number", _("number")
        DATE = "date", _("date")
        BOOLEAN = "boolean", _("yes/no")

    # Indexed by contact_attribute_once_per_account (account, key).
    account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.CASCADE,
        related_name="contact_attributes",
        db_index=False,
    )
    key = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.TEXT)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "key"], name="contact_attribute_once_per_account"
            )
        ]
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key} ({self.kind})"


class AudienceSettings(models.Model):
    """The customer's choices for their audience that are not about one list."""

    account = models.OneToOneField(
        "accounts.Account", on_delete=models.CASCADE, related_name="audience_settings"
    )
    # Attribute keys a contact may change on their own preference page (besides their
    # name). None by default: the customer decides what their contacts may edit.
    editable_attributes = models.JSONField(default=list, blank=True)
    # The sender of the account's mail to its contacts (the double opt-in, answers to
    # their requests), sent through the account's relay and signed with its DKIM key;
    # empty: "<account> via <operator>" at the operator's address.
    contact_sender = models.EmailField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "audience settings"

    def __str__(self) -> str:
        return f"audience settings of account {self.account_id}"


# The attribute names an account's contacts may edit, read by every preference page:
# kept in the cache with Redis (services.editable_attributes; the account's settings,
# nothing personal), forgotten whenever the account's settings row is saved or deleted,
# at once and again at the commit.
def editable_attributes_key(account_id: int) -> str:
    return f"tidings:editable-attributes:{account_id}"


def forget_editable_attributes(account_id: int) -> None:
    key = editable_attributes_key(account_id)
    _forget(key)
    transaction.on_commit(lambda: _forget(key))


def _forget(key: str) -> None:
    # With Redis away nothing is read from it (services.editable_attributes) and a save
    # goes on; what it kept is forgotten at its expiry at the latest.
    with contextlib.suppress(redis.RedisError):
        cache.delete(key)


@receiver([post_save, post_delete], sender=AudienceSettings)
def _audience_settings_written(instance: AudienceSettings, **kwargs: Any) -> None:
    forget_editable_attributes(instance.account_id)


class SuppressedContact(models.Model):
    """An address this account must not mail again without a new consent: erased
    contacts, kept only as a keyed hash (HMAC-SHA256), never in clear."""

    class Reason(models.TextChoices):
        ERASED = "erased", _("erased at the contact's request")
        UNSUBSCRIBED = "unsubscribed", _("unsubscribed")
        COMPLAINED = "complained", _("marked as spam")
        BOUNCED = "bounced", _("hard bounce")

    # Indexed by suppressed_once_per_account (account, digest).
    account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.CASCADE,
        related_name="suppressed_contacts",
        db_index=False,
    )
    digest = models.CharField(max_length=64)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "digest"], name="suppressed_once_per_account"
            )
        ]

    def __str__(self) -> str:
        return f"suppressed {self.digest[:12]}…"


class ContactRequest(models.Model):
    """A contact's data-protection request to the customer (the controller), made from
    the preference page: answered in the customer's request inbox within one month
    (GDPR art. 12(3)), escalated to the account's users when overdue."""

    class Kind(models.TextChoices):
        ACCESS = "access", _("access to my data")
        RECTIFICATION = "rectification", _("correction of my data")
        ERASURE = "erasure", _("erasure of my data")
        OBJECTION = "objection", _("objection to the processing of my data")
        RESTRICTION = "restriction", _("restriction of the processing of my data")

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        FULFILLED = "fulfilled", _("fulfilled")
        ANSWERED = "answered", _("answered")

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="contact_requests"
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Null once the contact is erased: the request stays as a record without them.
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )
    # Where the answer goes; cleared when the contact is erased.
    email = models.CharField(max_length=320, blank=True, default="")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    details = models.TextField(blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    received_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    answer = models.TextField(blank=True, default="")
    closed_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One open request per kind and contact: a second submission is the same one.
            models.UniqueConstraint(
                fields=["contact", "kind"],
                condition=models.Q(status="open"),
                name="one_open_request_per_kind",
            )
        ]
        indexes = [
            models.Index(fields=["account", "status", "due_at"], name="request_account_due"),
        ]
        ordering = ["due_at"]

    def __str__(self) -> str:
        return f"{self.kind} request {self.uuid.hex[:8]} ({self.status})"

    @property
    def is_overdue(self) -> bool:
        return self.status == self.Status.OPEN and self.due_at < timezone.now()
