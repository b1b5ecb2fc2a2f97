"""Database triggers an app keeps (the list counters, the audience's growth): which of
them are missing, and making those. PostgreSQL and SQLite each have their own text; SQLite
drops a table's triggers when a migration rebuilds the table, so apps check after every
migrate."""

from __future__ import annotations

from collections.abc import Mapping

from django.db.backends.base.base import BaseDatabaseWrapper


def missing(
    conn: BaseDatabaseWrapper, *, postgresql: Mapping[str, str], sqlite: Mapping[str, str]
) -> list[str]:
    """The names of this database's triggers that do not exist yet."""
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgname = ANY(%s) AND NOT tgisinternal",
                [list(postgresql)],
            )
            wanted = postgresql
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            wanted = sqlite
        present = {row[0] for row in cursor.fetchall()}
    return [name for name in wanted if name not in present]


def create(
    conn: BaseDatabaseWrapper,
    names: list[str],
    *,
    functions: str,
    postgresql: Mapping[str, str],
    sqlite: Mapping[str, str],
) -> None:
    """Make the triggers `names` (on PostgreSQL after their functions), in the caller's
    transaction."""
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            cursor.execute(functions)
            for name in names:
                cursor.execute(f"CREATE TRIGGER {name} {postgresql[name]}")
        else:
            for name in names:
                cursor.execute(f"CREATE TRIGGER {name} {sqlite[name]}")
