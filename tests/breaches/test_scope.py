"""Scoping a breach reads the data map (privacy.breach_scope): per account, the records
of each table touched and the people behind them, in Tidings's two roles (P33)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tidings.audience.models import Contact
from tidings.breaches import services
from tidings.breaches.models import Incident, Scope
from tidings.core import datamap
from tidings.privacy import breach_scope

CONTACTS = "audience.Contact"
USERS = "accounts.User"


@pytest.fixture
def breach(privacy_officer) -> Incident:  # type: ignore[no-untyped-def]
    incident = services.record_incident(
        by=privacy_officer,
        summary="A database dump was readable on a public URL",
        detected_at=timezone.now() - timedelta(hours=2),
    )
    return services.qualify_breach(
        incident,
        by=privacy_officer,
        confidentiality=True,
        cause="a misconfigured storage bucket",
        consequences="phishing using the leaked addresses",
        measures="the URL was closed; access logs reviewed",
    )


def test_every_table_of_the_data_map_can_be_chosen():
    labels = {e.label for e in breach_scope.scopable_entries()}
    assert labels == {e.label for e in datamap.entries()}
    assert {CONTACTS, USERS, "breaches.Notice"} <= labels


@pytest.mark.promise("P33")
def test_contacts_are_counted_per_account_as_processor_and_users_as_controller(
    breach, privacy_officer, acme, globex
):
    scope = services.scope_incident(breach, by=privacy_officer, entries=[CONTACTS, USERS])
    rows = {row["account"]: row for row in scope.per_account}
    assert rows[acme.account.pk]["contacts"] == 3 and rows[acme.account.pk]["users"] == 2
    assert rows[globex.account.pk]["contacts"] == 2 and rows[globex.account.pk]["users"] == 1
    assert scope.contacts_affected == 5 and scope.customers_affected == 3
    assert rows[acme.account.pk]["records"] == {CONTACTS: 3, USERS: 2}


def test_contacts_behind_rows_of_other_tables_are_found_through_the_map(
    breach, privacy_officer, acme
):
    # Subscriptions reach their contact by a path the data map declares.
    scope = services.scope_incident(breach, by=privacy_officer, entries=["audience.Subscription"])
    (row,) = scope.per_account
    assert row == {
        "account": acme.account.pk,
        "users": 0,
        "contacts": 3,
        "records": {"audience.Subscription": 3},
        "processor": True,
        "countries": {"": {"users": 0, "contacts": 3}},  # the contacts say none
    }


@pytest.mark.promise("P33")
def test_rows_made_after_the_exposure_ended_are_not_touched(breach, privacy_officer, acme):
    ended = timezone.now()
    late = acme.contacts[0]
    Contact.objects.filter(pk=late.pk).update(created_at=ended + timedelta(minutes=5))
    scope = services.scope_incident(
        breach,
        by=privacy_officer,
        entries=[CONTACTS, "audience.Subscription"],
        window_start=ended - timedelta(days=1),
        window_end=ended,
    )
    (row,) = scope.per_account
    # The contact made later is out; their subscription, dated on its own, is in.
    assert row["records"] == {CONTACTS: 2, "audience.Subscription": 3}
    assert row["contacts"] == 3


def test_the_data_map_says_when_rows_are_made_with_real_fields():
    dated = {e.label: e.dated_by for e in datamap.entries() if e.dated_by}
    assert dated[CONTACTS] == "created_at" and dated[USERS] == "date_joined"


def test_a_scope_limited_to_one_account_counts_no_other_tenant(
    breach, privacy_officer, acme, globex
):
    scope = services.scope_incident(
        breach, by=privacy_officer, entries=[CONTACTS], account_ids=[globex.account.pk]
    )
    assert scope.accounts == [globex.account.pk] and scope.contacts_affected == 2


def test_the_scope_holds_no_persons_name_or_address(breach, privacy_officer, acme):
    scope = services.scope_incident(breach, by=privacy_officer, entries=[CONTACTS, USERS])
    stored = str(Scope.objects.filter(pk=scope.pk).values().get())
    assert "@" not in stored


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"entries": []}, "Choose what was touched"),
        ({"entries": ["no.SuchTable"]}, "Choose what was touched"),
        ({"entries": [CONTACTS], "account_ids": [999999]}, "No account"),
        ({"entries": ["billing.Invoice"]}, "matches nobody"),
    ],
)
def test_bad_scopes_are_refused_and_change_nothing(breach, privacy_officer, acme, kwargs, message):
    with pytest.raises(services.BreachError, match=message):
        services.scope_incident(breach, by=privacy_officer, **kwargs)
    assert not Scope.objects.exists()


def test_an_unqualified_incident_is_not_scoped(privacy_officer, acme):
    incident = services.record_incident(
        by=privacy_officer, summary="odd logins", detected_at=timezone.now()
    )
    with pytest.raises(services.BreachError, match="Qualify"):
        services.scope_incident(incident, by=privacy_officer, entries=[CONTACTS])
