"""On PostgreSQL, every foreign key refuses the deletion of the row it points at at once
(`ON DELETE RESTRICT`) instead of at the commit (`NO ACTION`, Django's default).

Both refuse the same deletions: a row still pointed at by another. Whoever deletes a row
deletes or detaches the rows pointing at it first (Django's collector, and
privacy.plain_delete for an erasure), so no deletion of Tidings relies on the check
waiting for the commit. What changes is the cost: for each deleted row and each foreign
key to its table, `NO ACTION` first looks whether another row took the deleted key, then
looks for rows pointing at it; `RESTRICT` only does the second. A contact has fourteen
tables pointing at it: erasing an account of a million contacts spent about 105 s of
PostgreSQL's CPU on those checks, 60 s with `RESTRICT` (bench/README.md, erasure).

One kind of key stays as Django makes it: a nullable one whose rows go with the row they
point at (`null=True, on_delete=CASCADE`). On a database that can wait for the commit,
Django's collector does not order those rows before their parent (it relies on the wait),
so deleting a registration's account would otherwise be refused for its user.

Inserts are unchanged: the check that a new row's key exists still waits for the commit
(`DEFERRABLE INITIALLY DEFERRED`). Django creates every key as `NO ACTION`, and makes one
again when a migration alters a field, so this runs after every migrate and changes the
keys still left so (on an installation's big tables, the first time, each key is checked
over its table once); SQLite is left as it is.
"""

from __future__ import annotations

import re
from typing import Any

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction

# The constraint's definition as pg_get_constraintdef prints it: the action goes after
# the referenced table's columns (and a MATCH clause, if any).
_REFERENCES = re.compile(r"^(FOREIGN KEY \(.*?\) REFERENCES .*?\(.*?\)(?: MATCH \w+)?)(.*)$")


def _left_to_the_commit() -> set[tuple[str, str]]:
    """(table, column) of the keys the collector deletes after their parent."""
    return {
        (model._meta.db_table, field.column)
        for model in apps.get_models(include_auto_created=True)
        for field in model._meta.local_fields
        if isinstance(field, models.ForeignKey)
        and field.null
        and field.remote_field.on_delete is models.CASCADE
    }


def foreign_keys_to_restrict(using: str = DEFAULT_DB_ALIAS) -> list[tuple[str, str, str]]:
    """(table, constraint, definition) of this schema's foreign keys that still wait for
    the commit to refuse a deletion, and need not."""
    conn = connections[using]
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid),"
            " (SELECT attname FROM pg_attribute a"
            "   WHERE a.attrelid = c.conrelid AND a.attnum = c.conkey[1])"
            " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
            " WHERE c.contype = 'f' AND c.confdeltype = 'a' AND n.nspname = current_schema()"
            " AND cardinality(c.conkey) = 1 ORDER BY 1, 2"
        )
        found = cursor.fetchall()
    keep = _left_to_the_commit()
    return [(table, name, d) for table, name, d, column in found if (table, column) not in keep]


def restrict_deletes(using: str = DEFAULT_DB_ALIAS) -> int:
    """Make each foreign key still `NO ACTION` on deletion `RESTRICT`, keeping the rest
    of its definition. Returns how many were changed."""
    conn = connections[using]
    if conn.vendor != "postgresql":
        return 0
    keys = foreign_keys_to_restrict(using)
    quote = conn.ops.quote_name
    with transaction.atomic(using=using), conn.cursor() as cursor:
        for table, name, definition in keys:
            found = _REFERENCES.match(definition)
            if found is None:
                raise ValueError(f"unexpected foreign key definition on {table}: {definition}")
            restricted = f"{found[1]} ON DELETE RESTRICT{found[2]}"
            # One statement: the key is never missing, even for a moment.
            cursor.execute(
                f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)},"
                f" ADD CONSTRAINT {quote(name)} {restricted}"
            )
    return len(keys)


def after_migrate(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    restrict_deletes(using)
