"""The data map (DESIGN principle 1): one registry of every model that holds personal data.

It lives in core, the lowest layer, so that every app can declare its models in its own
`privacy.py` (loaded from its `AppConfig.ready()`); its readers live in privacy: My
Account (P15), the erasure job (P13, P17), the retention jobs (P12), the audit (P7) and
later the records of processing read this registry instead of knowing the models. A
test fails when a model with personal-looking fields is neither registered nor declared
free of personal data.

The map reaches the customer's contacts too: an entry's `contact` part says how one
contact's rows are found (a path from the contact, or by address for rows not tied to
the contact's row) and what erasing the contact does to them. The contact's view of
their data, its download and the erasure of contacts (privacy.contacts) read only that.
A test fails when an entry does not say whether it holds contacts' data, and when a
model that points at a contact has no contact part.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

# The account a row belongs to (accounts.Account: core names no app above it).
Account = models.Model


class Owner(StrEnum):
    """Whose data it is."""

    CUSTOMER = "customer"
    CONTACT = "contact"
    STAFF = "staff"
    VISITOR = "visitor"


class LegalBasis(StrEnum):
    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal obligation"
    LEGITIMATE_INTEREST = "legitimate interest"


# The legal bases as people read them, in their language (the values stay English).
BASIS_LABELS = {
    LegalBasis.CONSENT: _("consent"),
    LegalBasis.CONTRACT: _("contract"),
    LegalBasis.LEGAL_OBLIGATION: _("legal obligation"),
    LegalBasis.LEGITIMATE_INTEREST: _("legitimate interest"),
}


class DataClass(StrEnum):
    """What kind of data a table holds, as ENISA's severity method weighs it (its "data
    processing context", 2013): the base score a breach of it starts from."""

    SIMPLE = "simple"  # identity, contact details, what a person wrote
    BEHAVIOURAL = "behavioural"  # habits, traffic, where and when: opens, clicks, logins
    FINANCIAL = "financial"  # invoices, payments, income
    SENSITIVE = "sensitive"  # special categories (art. 9, 10): health, beliefs, convictions


class Erasure(StrEnum):
    """What the erasure job does with the rows of a closed account."""

    DELETE = "delete"
    ANONYMISE = "anonymise"  # personal fields blanked, the row stays (counts)
    KEEP_FOR_LEGAL_REASON = "keep for a legal reason"  # kept until keep_until, then deleted
    KEEP_WITHOUT_PERSONAL_DATA = "keep (holds no direct identifier)"


# Secrets are never exported, whatever the model: password hashes, API key digests,
# TOTP seeds, DKIM private keys, relay passwords, keyed hashes of addresses.
SECRET_FIELD_NAMES = frozenset({"password", "digest", "key", "private_key"})


class ContactErasure(StrEnum):
    """What erasing a contact does with their rows in one table."""

    DELETE = "delete"
    ANONYMISE = "anonymise"  # the fields of `anonymise_with` overwritten, the row stays
    KEEP = "keep (holds no direct identifier)"  # e.g. the keyed hash of the suppression list


@dataclass(frozen=True)
class Contacts:
    """Some contacts of one account, as the map's entries reach them: by their rows' ids,
    by their addresses (as stored: lower case, IDNA domain) or by the keyed hashes of
    those addresses (core.digests.email_digest)."""

    account_id: int
    ids: tuple[int, ...]
    emails: tuple[str, ...]
    digests: tuple[str, ...]
    # When the oldest of them was added: files made before hold none of them.
    since: datetime | None = None


@dataclass(frozen=True)
class Column:
    """A column of the contact's view: its label and where the value comes from (an
    ORM-style path on the row, "mailing_list__name", or a function of the row)."""

    label: str | Promise  # a translatable name: str() it where text is needed
    source: str | Callable[[Any], Any]


@dataclass
class Section:
    """One table of a contact's data, as shown and as downloaded."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ContactPart:
    """What an entry holds of the customer's contacts, for the contact.

    Rows are reached by `path` (the ORM path from this model to the contact; "" for
    the contact's own row, of which there is one entry) or, for rows not tied to the
    contact's row, by `rows` (a function of `Contacts`). Erasing the contacts first
    calls `fold` with their rows (an app turns them into anonymous counts), then
    deletes, anonymises (`anonymise_with`) or keeps them (`erase`).
    """

    title: str | Promise
    erase: ContactErasure
    path: str | None = None
    rows: Callable[[Contacts], models.QuerySet[Any]] | None = None
    anonymise_with: dict[str, Any] = field(default_factory=dict)
    fold: Callable[[models.QuerySet[Any], Contacts], None] | None = None
    # The contact's view: the columns (default: the entry's shown or personal fields),
    # the order of rows, or a function that lays the rows out as sections of its own.
    columns: tuple[Column, ...] = ()
    order_by: tuple[str, ...] = ("pk",)
    present: Callable[[models.QuerySet[Any]], list[Section]] | None = None
    # Where the section comes in the contact's view (lower first).
    position: int = 100
    # False for what the contact's view does not list (working files that may hold
    # them); erased all the same.
    shown: bool = True
    # For rows shared by several contacts (an import's one proof of consent): the part
    # of the rows that erasing these contacts removes, those no other contact relies
    # on. Decided before any other table of the contacts is erased (privacy.contacts).
    erase_rows: Callable[[Contacts], models.QuerySet[Any]] | None = None

    def erased(self, model: type[models.Model], contacts: Contacts) -> models.QuerySet[Any]:
        """The rows that erasing these contacts deletes or anonymises."""
        if self.erase_rows is not None:
            return self.erase_rows(contacts)
        return self.queryset(model, contacts)

    def queryset(self, model: type[models.Model], contacts: Contacts) -> models.QuerySet[Any]:
        if self.rows is not None:
            return self.rows(contacts)
        assert self.path is not None
        key = f"{self.path}__in" if self.path else "pk__in"
        return model._default_manager.filter(**{key: contacts.ids})


@dataclass(frozen=True)
class Entry:
    model: type[models.Model]
    owner: Owner
    category: str
    purpose: str
    legal_basis: LegalBasis
    retention: str
    personal_fields: tuple[str, ...]
    erase: Erasure
    # How to find this model's rows for one account: an ORM path to the Account
    # ("" for Account itself), or a function for models without such a path.
    account_path: str | None = None
    rows_for_account: Callable[[Account], models.QuerySet[Any]] | None = None
    # For ANONYMISE: field -> value written in place of the personal data.
    anonymise_with: dict[str, Any] = field(default_factory=dict)
    # For KEEP_FOR_LEGAL_REASON: the field that gets the date the row may be deleted,
    # how many years it is kept, and the field values that detach it from the account.
    keep_until_field: str = ""
    keep_years: Callable[..., int] | None = None
    # When the period depends on the row (an invoice's countries): the fields whose
    # values `keep_years` is called with, once per distinct combination.
    keep_years_by: tuple[str, ...] = ()
    detach_with: dict[str, Any] = field(default_factory=dict)
    # Shown to the customer in My Account.
    exported: bool = True
    # In the customer's "all my data" archive (P20): everything of theirs, including the
    # application data too big for a page (contacts, deliveries), but not the working
    # files of jobs (imports, exports) nor what outlives the account (erasure records).
    in_archive: bool = True
    # Never exported, not even to the customer, besides SECRET_FIELD_NAMES.
    secret_fields: tuple[str, ...] = ()
    # The columns shown to the customer, when not just the personal fields.
    shown_fields: tuple[str, ...] = ()
    description: str = ""
    # For the customer's contacts: how one contact's rows are reached and erased, or,
    # as text, why this table holds no contact's data.
    contact: ContactPart | str | None = None
    # Whose personal data the rows are (the records of processing, art. 30), when not
    # just the contacts' (an entry with a contact part) or else the owner's.
    data_subjects: tuple[Owner, ...] = ()
    # The rows the customer is shown (My Account, the archive), when not all of theirs:
    # e.g. a disclosure under a legal prohibition on telling, until it ends. Erasure and
    # retention still reach every row.
    shown_to_customer: Callable[[models.QuerySet[Any]], models.QuerySet[Any]] | None = None
    # The field that says when a row was made: a breach exposed until a moment touched
    # only the rows made by then (privacy.breach_scope). Empty: every row counts.
    dated_by: str = ""
    # Its kind of data, for a breach's severity (breaches.severity): simple unless said.
    data_class: DataClass = DataClass.SIMPLE
    # Where the country of the people its rows are about is known: the path of a field
    # (or a JSON key, "attributes__country") holding an ISO 3166 code ("FR", or a
    # subdivision such as "US-TX"). A breach's scope counts people per country from it
    # (privacy.breach_scope): a customer's users from their account's rows, a contact
    # from the contact's own row. Empty: this table does not say.
    country: str = ""

    def customer_rows(self, account: Account) -> models.QuerySet[Any]:
        rows = self.queryset_for(account)
        return self.shown_to_customer(rows) if self.shown_to_customer is not None else rows

    @property
    def subjects(self) -> tuple[Owner, ...]:
        if self.data_subjects:
            return self.data_subjects
        return (Owner.CONTACT,) if self.contact_part is not None else (self.owner,)

    @property
    def contact_part(self) -> ContactPart | None:
        return self.contact if isinstance(self.contact, ContactPart) else None

    @property
    def legal_basis_label(self) -> str:
        return str(BASIS_LABELS[LegalBasis(self.legal_basis)])

    @property
    def columns(self) -> tuple[str, ...]:
        return self.shown_fields or self.personal_fields

    @property
    def label(self) -> str:
        return self.model._meta.label

    @property
    def verbose_name(self) -> str:
        return capfirst(str(self.model._meta.verbose_name_plural))

    def queryset_for(self, account: Account) -> models.QuerySet[Any]:
        if self.rows_for_account is not None:
            return self.rows_for_account(account)
        assert self.account_path is not None
        if self.account_path == "":
            return self.model._default_manager.filter(pk=account.pk)
        return self.model._default_manager.filter(**{self.account_path: account})


@dataclass(frozen=True)
class ApplicationData:
    """A table of the customer's own application data with no personal data in it (lists,
    campaigns, layouts): not part of the privacy machinery, but part of "all my data"."""

    model: type[models.Model]
    reason: str
    account_path: str
    secret_fields: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.model._meta.label

    @property
    def verbose_name(self) -> str:
        return capfirst(str(self.model._meta.verbose_name_plural))

    def queryset_for(self, account: Account) -> models.QuerySet[Any]:
        return self.model._default_manager.filter(**{self.account_path: account})


_registry: dict[type[models.Model], Entry] = {}
_free_of_personal_data: dict[type[models.Model], str] = {}
_application_data: dict[type[models.Model], ApplicationData] = {}


def register(model: type[models.Model], **kwargs: Any) -> Entry:
    if "account_path" not in kwargs and "rows_for_account" not in kwargs:
        raise ValueError(f"{model._meta.label}: say how its rows are found for an account")
    if kwargs.get("erase") == Erasure.KEEP_FOR_LEGAL_REASON and not kwargs.get("keep_years"):
        raise ValueError(f"{model._meta.label}: a legal hold needs keep_years")
    fields = tuple(kwargs.pop("personal_fields"))
    secrets = tuple(kwargs.pop("secret_fields", ()))
    for name in (*fields, *secrets, *filter(None, [kwargs.get("dated_by", "")])):
        model._meta.get_field(name)  # fails loudly on a typo
    if kwargs.get("country"):
        model._meta.get_field(kwargs["country"].split("__")[0])
    part = kwargs.get("contact")
    if isinstance(part, ContactPart):
        if (part.path is None) == (part.rows is None):
            raise ValueError(f"{model._meta.label}: reach a contact's rows by path or rows")
        if part.erase == ContactErasure.ANONYMISE and not part.anonymise_with:
            raise ValueError(f"{model._meta.label}: say which fields anonymising blanks")
        for name in part.anonymise_with:
            model._meta.get_field(name)
    entry = Entry(model=model, personal_fields=fields, secret_fields=secrets, **kwargs)
    _registry[model] = entry
    return entry


def declare_free_of_personal_data(
    model: type[models.Model],
    reason: str,
    *,
    account_path: str | None = None,
    secret_fields: tuple[str, ...] = (),
) -> None:
    """`account_path` (the ORM path to the Account) makes the table part of the
    customer's "all my data" archive: their application data, though not personal."""
    _free_of_personal_data[model] = reason
    if account_path is not None:
        for name in secret_fields:
            model._meta.get_field(name)
        _application_data[model] = ApplicationData(model, reason, account_path, secret_fields)


# Files of an account that its archive holds beside the tables (the media library's
# images): a folder of the zip, what the README says of it, and a function that gives
# each file (name, bytes) of an account, one at a time.
ArchiveFiles = Callable[[Any], Iterator[tuple[str, bytes]]]
_archive_files: dict[str, tuple[str, ArchiveFiles]] = {}


def declare_archive_files(folder: str, about: str, files: ArchiveFiles) -> None:
    """Put an account's `files(account)` in its archive, in `folder/`."""
    _archive_files[folder] = (about, files)


def archive_files() -> list[tuple[str, str, ArchiveFiles]]:
    return [(folder, about, files) for folder, (about, files) in _archive_files.items()]


def entries() -> list[Entry]:
    return list(_registry.values())


def entry_for(model: type[models.Model]) -> Entry | None:
    return _registry.get(model)


def is_declared_free(model: type[models.Model]) -> bool:
    return model in _free_of_personal_data


def customer_entries() -> Iterator[Entry]:
    return (e for e in _registry.values() if e.owner == Owner.CUSTOMER)


def contact_entries() -> list[Entry]:
    """The entries that hold contacts' data, in the order of the contact's view."""
    found = [e for e in _registry.values() if e.contact_part is not None]
    return sorted(found, key=lambda e: e.contact_part.position if e.contact_part else 0)


def contact_root() -> Entry:
    """The entry of the contact's own row (its part's path is "")."""
    for entry in _registry.values():
        part = entry.contact_part
        if part is not None and part.path == "":
            return entry
    raise LookupError(_("no entry is the contact's own row"))


def application_data() -> list[ApplicationData]:
    return list(_application_data.values())


# Field names that suggest personal data. Used only to catch a model someone forgot to
# register; the registry, not this pattern, is the truth.
PERSONAL_NAME = re.compile(
    r"(^|_)(e?mail|name|first|last|phone|mobile|address|ip|ip_address|user_agent|birth"
    r"|tax|vat|iban|username|recipients?|body|message)(_|$)"
)


def looks_personal(model: type[models.Model]) -> list[str]:
    """The fields of `model` that look like personal data."""
    found = []
    for f in model._meta.concrete_fields:
        by_type = getattr(f, "encrypted", False) or isinstance(f, models.EmailField)
        by_name = PERSONAL_NAME.search(f.name) and not isinstance(f, models.ForeignKey)
        if by_type or by_name:
            found.append(f.name)
    return found


# --- in the customer's words -----------------------------------------------------------

# The data map speaks to engineers: it cites promise ids and the environment variables
# that set a period. The policy speaks to customers, so those become plain values.
_PROMISE_REF = re.compile(r"\s*\(P\d+(?:,\s*P\d+)*\)")
_PAREN_SETTING = re.compile(r"\s*\((?P<name>TIDINGS_[A-Z_]+)[^()]*\)")
_BARE_SETTING = re.compile(r"\b(?P<name>TIDINGS_[A-Z_]+)(?: \(default [^()]*\))?")


def _setting_values() -> dict[str, str]:
    retention = settings.RETENTION
    return {
        "TIDINGS_INVOICE_RETENTION_YEARS": f"{retention['invoice_years']} years",
        "TIDINGS_AUDIT_RETENTION_YEARS": f"{retention['audit_years']} years",
        "TIDINGS_OUTBOX_DAYS": f"{retention['outbox_days']} days",
        "TIDINGS_UNCONFIRMED_SIGNUP_DAYS": f"{retention['unconfirmed_signup_days']} days",
        "TIDINGS_ERASURE_GRACE_DAYS": f"{retention['grace_days']} days",
        "TIDINGS_ERASURE_DEADLINE_DAYS": f"{retention['erasure_deadline_days']} days",
        "TIDINGS_LOGIN_LOCKOUT_MINUTES": f"{lockout_minutes()} minutes",
        "TIDINGS_SESSION_HOURS": f"{settings.SESSION_COOKIE_AGE // 3600} hours",
        "TIDINGS_SIGNUP_CONFIRM_DAYS": f"{settings.SIGNUP['confirm_days']} days",
        "TIDINGS_TRACKING_DAYS": f"{settings.SENDING['tracking_days']} days",
        "TIDINGS_OUTBOUND_DAYS": f"{settings.SENDING['outbound_days']} days",
        "TIDINGS_RAW_WEBHOOK_DAYS": f"{settings.BILLING['raw_webhook_days']} days",
        "TIDINGS_DESK_RETENTION_MONTHS": f"{settings.DESK['retention_months']} months",
    }


def plain(text: str) -> str:
    """A data-map phrase in customer's words: no promise ids, settings named by value."""
    values = _setting_values()
    text = _PROMISE_REF.sub("", str(text))  # str(): a phrase in the active language

    def in_parentheses(match: re.Match[str]) -> str:
        value = values.get(match["name"])
        around = text[: match.start()] + text[match.end() :]
        # "3 years (TIDINGS_AUDIT_RETENTION_YEARS)" already says the value.
        return "" if value is None or value in around else f" ({value})"

    text = _PAREN_SETTING.sub(in_parentheses, text)
    return _BARE_SETTING.sub(lambda m: values.get(m["name"], m[0]), text)


def lockout_minutes() -> int:
    return round(float(settings.AXES_COOLOFF_TIME) * 60)
