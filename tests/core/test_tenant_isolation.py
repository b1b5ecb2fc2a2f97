"""Tenants never meet (DESIGN principle 5): another account's id in any URL shows
nothing of theirs and changes nothing.

The test walks every URL pattern of the site that takes a parameter, so a route added
later is covered without anyone remembering to add it here. It fills each parameter
with the ids of the other account's rows (pk, uuid) and requests the page logged in as
the customer, with GET and with an empty POST.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.core import serializers
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import populate_account
from tidings.accounts.models import Account

# Covered by their own tests: the staff console (roles, stated reasons) and the API
# (tests/api, scoped by key).
SKIPPED_PREFIXES = ("staff/admin/", "api/v1/")


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            yield route, p


def routes_with_parameters() -> list[tuple[str, URLPattern]]:
    found = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith(SKIPPED_PREFIXES) or not pattern.pattern.converters:
            continue
        found.append((route, pattern))
    return found


def _account_models() -> list[type[models.Model]]:
    """Every model with a direct foreign key to Account."""
    return [
        m
        for m in apps.get_models()
        if any(
            isinstance(f, models.ForeignKey) and f.related_model is Account
            for f in m._meta.concrete_fields
        )
    ]


def _rows_of(account: Account) -> list[models.Model]:
    rows: list[models.Model] = [account]
    for model in _account_models():
        field = next(
            f.name
            for f in model._meta.concrete_fields
            if isinstance(f, models.ForeignKey) and f.related_model is Account
        )
        rows += list(model._default_manager.filter(**{field: account}))
    return rows


def _snapshot(account: Account) -> str:
    return serializers.serialize("json", _rows_of(account))


def _values_for(converter: Any, rows: list[models.Model]) -> list[Any]:
    # Each value once: rows of different tables share small primary keys, and the same
    # path asked twice proves nothing more (it was most of this test's time).
    name = type(converter).__name__
    pks = list(dict.fromkeys(r.pk for r in rows))
    uuids = list(
        dict.fromkeys(r.uuid for r in rows if isinstance(getattr(r, "uuid", None), uuid.UUID))
    )
    if name == "IntConverter":
        return pks
    if name == "UUIDConverter":
        return uuids
    return list(dict.fromkeys(str(v) for v in uuids + pks))  # str, slug, path: every id as text


def _paths(route: str, pattern: URLPattern, rows: list[models.Model]) -> Iterator[str]:
    """The route with its parameters filled by each of `rows`' ids in turn."""
    choices = {n: _values_for(c, rows) for n, c in pattern.pattern.converters.items()}
    if not all(choices.values()):
        return
    for i in range(max(len(v) for v in choices.values())):
        path = "/" + route
        for name, values in choices.items():
            path = re.sub(rf"<(?:[a-z_]+:)?{name}>", str(values[i % len(values)]), path)
        yield path


# Every view filters by the request's account in the ORM, the same on both databases;
# the walk (2,600 requests, the fast set's slowest test) runs once, on PostgreSQL, to keep
# the suite's time in hand.
@pytest.mark.postgres
@pytest.mark.django_db
def test_another_accounts_ids_in_any_url_show_nothing_and_change_nothing(
    client, customer, other_customer
):
    populate_account(other_customer.account)
    theirs = _rows_of(other_customer.account)
    before = _snapshot(other_customer.account)
    secrets = [
        "carol@example.net",
        "Carol Contact",
        other_customer.email,
        other_customer.account.name,
        "The account's campaign",
        "The account's list",
    ]
    client.force_login(customer)
    tried = 0
    for route, pattern in routes_with_parameters():
        for path in _paths(route, pattern, theirs):
            for method in ("get", "post"):
                response = getattr(client, method)(path)
                tried += 1
                assert response.status_code < 500, f"{method.upper()} {path}"
                body = response.content.decode(errors="replace")
                for secret in secrets:
                    assert secret not in body, f"{method.upper()} {path} shows {secret!r}"
    assert _snapshot(other_customer.account) == before
    assert tried > 0
