"""JSON lookups for contacts' tags and attributes that work on PostgreSQL and SQLite.

Django's `contains` on a JSONField is PostgreSQL-only; the embedded default runs on
SQLite. These lookups say the same thing on both, and on PostgreSQL they use the GIN
(jsonb_path_ops) indexes of the contact table, because they compile to `@>`.

- `tags__has_element="vip"`: the JSON array holds the string.
- `attributes__holds={"city": "Ghent"}`: the JSON object holds the key with exactly
  that value (same JSON type: 3 is not "3").
- `attributes__attribute_gt=("age", 40)` (and `attribute_lt`): ordered comparison of
  one attribute, only against values of the same JSON type.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.sql.compiler import SQLCompiler

# What an attribute key may be (also checked where the customer names one): the key is
# spelled into a SQLite JSON path, so quotes and backslashes must never reach it.
ATTRIBUTE_KEY = re.compile(r"^[\w][\w .-]{0,63}$")


def _sqlite_json_type(value: Any) -> tuple[str, ...]:
    if isinstance(value, bool):
        return ("true",) if value else ("false",)
    if isinstance(value, int | float):
        return ("integer", "real")
    if value is None:
        return ("null",)
    return ("text",)


@models.JSONField.register_lookup
class HasElement(models.Lookup):
    lookup_name = "has_element"
    prepare_rhs = False

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        lhs, params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            # An empty array holds nothing; said here, it lets the planner use the tags'
            # index, which leaves contacts without a tag out (migration 0014).
            return (
                f"({lhs} @> %s::jsonb AND {lhs} <> '[]'::jsonb)",
                [*params, json.dumps([str(self.rhs)]), *params],
            )
        return (
            f"EXISTS (SELECT 1 FROM json_each({lhs}) AS e WHERE e.value = %s)",  # noqa: S608
            [*params, str(self.rhs)],
        )


@models.JSONField.register_lookup
class Holds(models.Lookup):
    lookup_name = "holds"
    prepare_rhs = False

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        if not (isinstance(self.rhs, dict) and len(self.rhs) == 1):
            raise ValueError("holds takes a dict of exactly one key")
        ((key, value),) = self.rhs.items()
        if not ATTRIBUTE_KEY.match(str(key)):
            raise ValueError(f"not an attribute key: {key!r}")
        lhs, params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} @> %s::jsonb", [*params, json.dumps({key: value})]
        path = f'$."{key}"'
        types = _sqlite_json_type(value)
        marks = ", ".join("%s" for _ in types)
        # A missing key makes json_type NULL, and NULL IN (...) is NULL, which NOT keeps
        # NULL: "is not" would drop the contacts without the attribute. COALESCE makes
        # it false, as `@>` is on PostgreSQL.
        if isinstance(value, bool) or value is None:
            return f"COALESCE(json_type({lhs}, %s) IN ({marks}), 0)", [*params, path, *types]
        return (
            f"COALESCE(json_type({lhs}, %s) IN ({marks}) AND json_extract({lhs}, %s) = %s, 0)",
            [*params, path, *types, *params, path, value],
        )


class _AttributeOrder(models.Lookup):
    """`attributes__attribute_gt=("age", 40)`: the attribute is of the value's JSON type
    (number or text) and greater (or less) than it. ISO dates compare as text."""

    prepare_rhs = False
    operator = ">"

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> Any:
        key, value = self.rhs
        if not ATTRIBUTE_KEY.match(str(key)):
            raise ValueError(f"not an attribute key: {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("compare with a number or a text")
        lhs, params = self.process_lhs(compiler, connection)
        numeric = not isinstance(value, str)
        if connection.vendor == "postgresql":
            kind = "number" if numeric else "string"
            return (
                f"(jsonb_typeof({lhs} -> %s) = %s AND ({lhs} -> %s) {self.operator} %s::jsonb)",
                [*params, key, kind, *params, key, json.dumps(value)],
            )
        path = f'$."{key}"'
        types = ("integer", "real") if numeric else ("text",)
        marks = ", ".join("%s" for _ in types)
        # COALESCE: false, not NULL, without the key (as on PostgreSQL), also under NOT.
        return (
            f"COALESCE(json_type({lhs}, %s) IN ({marks}) "
            f"AND json_extract({lhs}, %s) {self.operator} %s, 0)",
            [*params, path, *types, *params, path, value],
        )


@models.JSONField.register_lookup
class AttributeGreater(_AttributeOrder):
    lookup_name = "attribute_gt"
    operator = ">"


@models.JSONField.register_lookup
class AttributeLess(_AttributeOrder):
    lookup_name = "attribute_lt"
    operator = "<"


class _ElementFunc(models.Func):
    """`tags` changed by one string: each subclass writes the SQL of the change."""

    output_field = models.JSONField()

    def __init__(self, field: str, element: str) -> None:
        self.element = str(element)
        super().__init__(models.F(field))

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> Any:
        field_sql, field_params = compiler.compile(self.source_expressions[0])
        sql = self.change(field_sql, connection.vendor == "postgresql")
        return sql, [*field_params, self.element]

    def change(self, field_sql: str, postgresql: bool) -> str:
        raise NotImplementedError


class AppendElement(_ElementFunc):
    """`tags` with one more string at its end (callers exclude rows that have it)."""

    def change(self, field_sql: str, postgresql: bool) -> str:
        if postgresql:
            return f"({field_sql} || jsonb_build_array(%s::text))"
        return f"json_insert({field_sql}, '$[#]', %s)"


class RemoveElement(_ElementFunc):
    """`tags` without the string `element` (callers take only rows that have it)."""

    def change(self, field_sql: str, postgresql: bool) -> str:
        if postgresql:
            return f"({field_sql} - %s::text)"
        return f"(SELECT json_group_array(value) FROM json_each({field_sql}) WHERE value <> %s)"  # noqa: S608 (compiled SQL)
