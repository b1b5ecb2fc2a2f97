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

Where the map says where people are (`Entry.country`), the people are counted per
country too: an account's users under the country of the account's latest row of a
customer's entry that says one (the billing identity of its last order), the contacts
touched under their own row's country (the attribute "country"), grouped in the
database. A value that is no ISO 3166 code ("FR", "US-TX") counts as unknown ("").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
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
    # The people per country where the map knows it ("" unknown):
    # {"FR": {"users": 2, "contacts": 5}}.
    countries: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, country: str, role: str, n: int) -> None:
        if n:
            here = self.countries.setdefault(country, {"users": 0, "contacts": 0})
            here[role] += n

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "users": self.users,
            "contacts": self.contacts,
            "records": self.records,
            "processor": self.processor,
            "countries": self.countries,
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


def per_country(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """The people of a scope's accounts (`Scope.per_account`) summed per country."""
    found: dict[str, dict[str, int]] = {}
    for row in rows:
        for country, counts in row.get("countries", {}).items():
            here = found.setdefault(country, {"users": 0, "contacts": 0})
            for role in ("users", "contacts"):
                here[role] += counts.get(role, 0)
    return dict(sorted(found.items()))


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


COUNTRY_CODE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


def country_code(value: Any) -> str:
    """An ISO 3166 code ("FR", "US-TX") as the map's fields hold it, or "" (unknown)."""
    code = str(value or "").strip().upper()
    return code if COUNTRY_CODE.match(code) else ""


def account_country(account: Account) -> str:
    """Where an account's users are, as far as the map knows: the country of its latest
    row of a customer's entry that says one (the billing identity of its last order)."""
    for entry in datamap.entries():
        if entry.country and entry.owner == Owner.CUSTOMER and entry.contact_part is None:
            latest = (
                entry.queryset_for(account)
                .exclude(**{entry.country: ""})
                .order_by("-pk")
                .values_list(entry.country, flat=True)
                .first()
            )
            if country_code(latest):
                return country_code(latest)
    return ""


def contacts_by_country(contacts: Any) -> dict[str, int]:
    """How many of `contacts` (a queryset of contacts' rows) live where, by the country
    the contact's own row holds (the map's contact root says where), counted in the
    database."""
    path = datamap.contact_root().country
    if not path:
        total = contacts.count()
        return {"": total} if total else {}
    found: dict[str, int] = {}
    rows = contacts.order_by().values(path).annotate(n=Count("pk"))
    for row in rows:
        code = country_code(row[path])
        found[code] = found.get(code, 0) + row["n"]
    return found


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
            here.add(account_country(account), "users", here.users)
        contacts = contacts_by_country(contacts_touched(entries, account, until))
        here.contacts = sum(contacts.values())
        for country, n in sorted(contacts.items()):
            here.add(country, "contacts", n)
        found.append(here)
    return BreachScope(accounts=found, categories=sorted(categories))


def accounts_named(ids: list[int] | None) -> Any:
    """The accounts a scope covers: those numbered, or all."""
    if not ids:
        return Account.objects.all()
    return Account.objects.filter(pk__in=ids)
