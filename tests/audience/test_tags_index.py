"""The tags' GIN index leaves untagged contacts out (migration 0014: each imported
contact paid for an entry no query used), and `tags__has_element` is still answered by
it on PostgreSQL; the lookup means the same on both databases."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from tests.factories import AccountFactory
from tidings.audience.models import Contact

pytestmark = pytest.mark.django_db


def _tagged(account, tags_by_name):  # type: ignore[no-untyped-def]
    return {
        name: Contact.objects.create(account=account, email=f"{name}@example.org", tags=tags)
        for name, tags in tags_by_name.items()
    }


def test_has_element_finds_the_tag_and_its_exclusion_keeps_the_untagged():
    account = AccountFactory()
    made = _tagged(account, {"vip": ["vip"], "both": ["new", "vip"], "new": ["new"], "none": []})
    contacts = Contact.objects.filter(account=account)
    assert set(contacts.filter(tags__has_element="vip")) == {made["vip"], made["both"]}
    assert set(contacts.exclude(tags__has_element="vip")) == {made["new"], made["none"]}
    assert not contacts.filter(tags__has_element="").exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's GIN index")
def test_the_index_holds_only_tagged_contacts_and_answers_has_element():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'contact_tags_gin'")
        (definition,) = cursor.fetchone()
    assert "jsonb_path_ops" in definition and "WHERE (tags <> '[]'::jsonb)" in definition
    account = AccountFactory()
    _tagged(account, {f"c{i}": (["vip"] if i % 50 == 0 else []) for i in range(200)})
    query = Contact.objects.filter(account=account, tags__has_element="vip")
    sql, params = query.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        # Whatever the table's size, the plan must be able to use the index: without
        # sequential scans the planner takes it if, and only if, it may.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("ANALYZE audience_contact")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "contact_tags_gin" in plan, plan
    assert query.count() == 4
