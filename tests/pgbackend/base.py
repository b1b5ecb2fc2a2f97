"""PostgreSQL for the test suite: Django's own backend, but a transactional test's
flush deletes rows instead of truncating tables.

Django empties the database after each test that commits (`transaction=True`) with one
`TRUNCATE` of every table. PostgreSQL makes a truncated table and each of its indexes
new files, so with about a hundred tables one flush took 1.5 to 4.5 s on the CI's two
cores, for a database holding a few rows: the PostgreSQL run spent minutes on it. A
`DELETE` of every table takes about 10 ms. Triggers and foreign-key checks are off for
the flush's transaction (`session_replication_role = replica`, `SET LOCAL`, so the
connection gets them back at its end): the tables are emptied in any order, and the
append-only and immutability triggers the product puts on its audit log and issued
invoices (which a `TRUNCATE` never fires) stay out of the way, as before. A flush that
also resets sequences is left to Django's `TRUNCATE ... RESTART IDENTITY`."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(
        self, style: Any, tables: Any, *, reset_sequences: bool = False, allow_cascade: bool = False
    ) -> list[str]:
        if not tables or reset_sequences:
            return super().sql_flush(
                style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        return [
            "SET LOCAL session_replication_role = replica;",
            # Table names from Django's own introspection, quoted.
            *(f"DELETE FROM {self.quote_name(table)};" for table in tables),  # noqa: S608
        ]


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
