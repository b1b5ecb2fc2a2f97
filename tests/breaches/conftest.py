"""Breach register fixtures: the staff console's logged-in officers, and an account with
users and contacts for scoping."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import AccountFactory, UserFactory
from tests.staff.conftest import console, operator_admin, privacy_officer  # noqa: F401
from tidings.accounts.models import Account, User
from tidings.audience import services as audience
from tidings.audience.models import Contact, MailingList


@dataclass
class Tenant:
    account: Account
    users: list[User]
    contacts: list[Contact]


def make_tenant(name: str, n_contacts: int, *, languages: tuple[str, ...] = ("",)) -> Tenant:
    account = AccountFactory(name=name)
    users = [
        UserFactory(account=account, email=f"{name.lower()}{i}@example.org", language=lang)
        for i, lang in enumerate(languages)
    ]
    newsletter = MailingList.objects.create(account=account, name=f"{name} news")
    contacts = [
        audience.add_contact(account, f"c{i}@{name.lower()}.example.net", lists=[newsletter])
        for i in range(n_contacts)
    ]
    return Tenant(account, users, contacts)


@pytest.fixture
def acme(db) -> Tenant:  # type: ignore[no-untyped-def]
    """An account with an English and a French user and three contacts."""
    return make_tenant("Acme", 3, languages=("en", "fr"))


@pytest.fixture
def globex(db) -> Tenant:  # type: ignore[no-untyped-def]
    """Another tenant: one user, two contacts."""
    return make_tenant("Globex", 2)
