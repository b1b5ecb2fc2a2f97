"""Writing contacts to CSV, XLSX or XLS with constant memory, from any queryset.

`export_contacts(queryset, fmt, path)` takes a queryset of Contact, so the whole
audience, a list, a search or a segment all export the same way. Contacts are read in
batches by primary key (keyset, never OFFSET) and written as they come: CSV with the
csv module, XLSX with XlsxWriter in constant-memory mode, XLS with xlwt, which starts a
new sheet every 65,535 rows (the format's limit) and flushes each batch of rows into its
compact binary form (the sinks of `core.spreadsheets`, which keep each format's one rule
of formula safety).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.contrib.postgres.aggregates import StringAgg
from django.db import connection
from django.db.models import CharField, F, Func, OuterRef, QuerySet, Subquery, Value

from tidings.audience.models import Contact, Subscription
from tidings.core.spreadsheets import SINKS

BATCH = 5_000
MAX_ATTRIBUTE_COLUMNS = 200
FIELDS = [
    "pk", "email", "name", "status", "tags", "legal_basis", "basis_at", "source",
    "created_at", "attributes",
]  # fmt: skip
HEADER = [
    "email", "name", "status", "lists", "tags", "legal_basis", "basis_at", "source",
    "created_at",
]  # fmt: skip


def _nothing() -> None:
    pass


def export_contacts(
    contacts: QuerySet[Contact], fmt: str, path: Path, *, heartbeat: Callable[[], None] = _nothing
) -> int:
    """Write `contacts` to `path` as csv, xlsx or xls; the number of contacts written.
    `heartbeat` is called after each batch (the job's lease)."""
    keys = attribute_keys(contacts)
    header = HEADER + keys + (["other_attributes"] if len(keys) == MAX_ATTRIBUTE_COLUMNS else [])
    sink = SINKS[fmt](path, header)
    n = 0
    try:
        for batch in contact_rows(contacts, keys):
            sink.write(batch)
            n += len(batch)
            heartbeat()
    finally:
        sink.close()
    return n


def attribute_keys(contacts: QuerySet[Contact]) -> list[str]:
    """The attribute names used by these contacts, sorted (at most MAX_ATTRIBUTE_COLUMNS)."""
    plain = contacts.order_by()
    if connection.vendor == "postgresql":
        keys = (
            plain.annotate(
                key=Func(F("attributes"), function="jsonb_object_keys", output_field=CharField())
            )
            .values_list("key", flat=True)
            .distinct()
        )
        return sorted(keys)[:MAX_ATTRIBUTE_COLUMNS]
    found: set[str] = set()
    for attributes in plain.values_list("attributes", flat=True).iterator(chunk_size=BATCH):
        found.update(attributes or {})
    return sorted(found)[:MAX_ATTRIBUTE_COLUMNS]


def contact_rows(contacts: QuerySet[Contact], keys: Sequence[str]) -> Iterator[list[list[Any]]]:
    """Batches of rows, in primary-key order."""
    overflow = len(keys) == MAX_ATTRIBUTE_COLUMNS
    known = set(keys)
    on_postgres = connection.vendor == "postgresql"
    if on_postgres:
        # PostgreSQL formats the dates and gathers each contact's lists in its own
        # process, which runs beside this one: the second core does that work.
        contacts = contacts.annotate(
            basis_text=_utc_text("basis_at"),
            created_text=_utc_text("created_at"),
            lists_text=Subquery(
                Subscription.objects.filter(
                    contact_id=OuterRef("pk"), status=Subscription.Status.CONFIRMED
                )
                .values("contact_id")
                .annotate(
                    names=StringAgg("mailing_list__name", ", ", order_by="mailing_list__name")
                )
                .values("names")
            ),
        )
        fields = [*FIELDS[:6], "basis_text", "source", "created_text", "attributes", "lists_text"]
    else:
        fields = FIELDS
    last = 0
    while True:
        batch = list(contacts.filter(pk__gt=last).order_by("pk").values_list(*fields)[:BATCH])
        if not batch:
            return
        last = batch[-1][0]
        if not on_postgres:
            lists = _lists_of([row[0] for row in batch])
            batch = [(*row, lists.get(row[0], "")) for row in batch]
        rows = []
        for _, email, name, status, tags, basis, basis_at, source, created, attrs, names in batch:
            attrs = attrs or {}
            row = [
                email,
                name,
                status,
                names or "",
                ", ".join(tags) if tags else "",
                basis,
                _when(basis_at),
                source,
                _when(created),
                *[_value(attrs.get(k, "")) for k in keys],
            ]
            if overflow:
                rest = {k: v for k, v in attrs.items() if k not in known}
                row.append(json.dumps(rest, ensure_ascii=False) if rest else "")
            rows.append(row)
        yield rows


def _utc_text(field: str) -> Func:
    return Func(
        F(field),
        Value("YYYY-MM-DD HH24:MI:SS"),
        function="to_char",
        template="%(function)s(%(expressions)s)",
        output_field=CharField(),
    )


def _lists_of(ids: list[int]) -> dict[int, str]:
    names: dict[int, list[str]] = defaultdict(list)
    for contact_id, name in (
        Subscription.objects.filter(contact_id__in=ids, status=Subscription.Status.CONFIRMED)
        .order_by("mailing_list__name")
        .values_list("contact_id", "mailing_list__name")
    ):
        names[contact_id].append(name)
    return {pk: ", ".join(n) for pk, n in names.items()}


def _when(value: datetime | str | None) -> str:
    """UTC, to the second, as PostgreSQL's to_char above writes it."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return value or ""


def _value(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float) or value is None:
        return value if value is not None else ""
    return json.dumps(value, ensure_ascii=False)
