"""Breach scoping (P33): who and what an incident touched, read from the data map.

Staff choose entries of the map (tables of personal data) and accounts (or all of
them); this reader, like My Account and erasure, knows no table of its own. For each
account it counts each entry's rows (`Entry.queryset_for`), then the people behind them
in Tidings's two roles:

- controller (the customer's own data: an entry whose subjects include customers): the
  account's users, every one of whom the policy promises to tell;
- processor (the customer's contacts: an entry with a contact part reached by a path):
  the distinct contacts behind the rows, counted in the database, never loaded.

A breach exposed until a moment touched only the rows made by then, for the entries
that say when their rows are made (`Entry.dated_by`); the others count whole.
Rows of contacts reached only by address (the ledger, the suppression list) are counted
as records; the people behind them are not re-identified. The result holds account
numbers and counts only: no person's name or address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import translation

from tidings.accounts.mailability import users_q
from tidings.accounts.models import Account, User
from tidings.core import datamap
from tidings.core.datamap import Owner
from tidings.core.mail import Purpose


@dataclass
class AccountScope:
    account: int
    users: int = 0
    contacts: int = 0
    records: dict[str, int] = field(default_factory=dict)
    # Whether contacts' data was touched, even where the people behind the rows cannot
    # be counted (rows reached by address): the customer must be told all the same.
    processor: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "users": self.users,
            "contacts": self.contacts,
            "records": self.records,
            "processor": self.processor,
        }


@dataclass
class BreachScope:
    accounts: list[AccountScope]
    categories: list[str]

    @property
    def users(self) -> int:
        return sum(a.users for a in self.accounts)

    @property
    def contacts(self) -> int:
        return sum(a.contacts for a in self.accounts)

    @property
    def records(self) -> int:
        return sum(sum(a.records.values()) for a in self.accounts)


def scopable_entries() -> list[datamap.Entry]:
    """The entries of the map a breach can touch, by label."""
    return sorted(datamap.entries(), key=lambda e: e.label)


def entry_by_label(label: str) -> datamap.Entry | None:
    return next((e for e in datamap.entries() if e.label == label), None)


def users_told(*account_ids: int) -> Any:
    """The users of the accounts a breach notice goes to: the one rule, notice purpose
    (every user, whatever the state of the user or the account)."""
    return User.objects.filter(users_q(Purpose.NOTICE), account_id__in=account_ids)


def exposed_rows(entry: datamap.Entry, account: Account, until: datetime | None) -> Any:
    """The account's rows of `entry` a breach lasting `until` could touch: those made by
    then, where the entry says when its rows are made (`dated_by`), else all of them."""
    rows = entry.queryset_for(account)
    if until is not None and entry.dated_by:
        rows = rows.filter(**{f"{entry.dated_by}__lte": until})
    return rows


def _contact_rows(entries: list[datamap.Entry], account: Account, until: datetime | None) -> Q:
    """Which contacts of `account` have rows in `entries` (by each contact part's path)."""
    touched = Q(pk__in=[])
    for entry in entries:
        part = entry.contact_part
        if part is not None and part.path is not None:
            rows = exposed_rows(entry, account, until)
            touched |= Q(pk__in=rows.values(part.path or "pk"))
    return touched


def contacts_touched(
    entries: list[datamap.Entry], account: Account, until: datetime | None = None
) -> Any:
    """The account's contacts behind the rows of `entries`, as a queryset."""
    rows = _contact_rows(entries, account, until)
    return datamap.contact_root().queryset_for(account).filter(rows)


def compute(
    entries: list[datamap.Entry], accounts: Any, until: datetime | None = None
) -> BreachScope:
    """Count, per account of `accounts` (a queryset), the rows of `entries` exposed
    until `until` and the people behind them; accounts with nothing touched are left
    out."""
    found: list[AccountScope] = []
    categories: set[str] = set()
    for account in accounts.order_by("pk").iterator():
        here = AccountScope(account=account.pk)
        controller = False
        for entry in entries:
            count = exposed_rows(entry, account, until).count()
            if not count:
                continue
            here.records[entry.label] = count
            with translation.override(settings.LANGUAGE_CODE):
                categories.add(str(entry.category))
            if Owner.CUSTOMER in entry.subjects:
                controller = True
            if Owner.CONTACT in entry.subjects:
                here.processor = True
        if not here.records:
            continue
        if controller:
            here.users = users_told(account.pk).count()
        here.contacts = contacts_touched(entries, account, until).count()
        found.append(here)
    return BreachScope(accounts=found, categories=sorted(categories))


def accounts_named(ids: list[int] | None) -> Any:
    """The accounts a scope covers: those numbered, or all."""
    if not ids:
        return Account.objects.all()
    return Account.objects.filter(pk__in=ids)
