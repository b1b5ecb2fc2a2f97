"""The contact's side of the data map: what the customer holds on some of their contacts,
and the erasure of contacts, read from the entries' contact parts (core.datamap).

`sections` is the contact's view of their data (and, through audience.rights, its
download); `erase` is the one erasure of contacts (audience's `erase_contact` and bulk
erase). Neither names a table: a table added to the map with a contact part appears in
the view and is erased with no code here. Erasing goes, for each entry:

1. rows shared with other contacts first (what only these contacts relied on is found
   while their rows still point at it), then the deepest paths, the contact's own row
   last (so that no cascade deletes a row before its app folded it, and rows found
   through the contact are still found);
2. the part's `fold` hook, if any, with the rows about to go (campaign counts);
3. then delete, anonymise or keep, as the part says.

The caller holds the transaction: a batch of contacts is erased whole or not at all.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext

from tidings.core import datamap
from tidings.core.datamap import Column, ContactErasure, Contacts, Entry, Section


def when(value: datetime | None) -> str:
    """A moment as the reader reads it: their language's format, in the active time zone
    (the operator's for a contact), with the zone named."""
    if not value:
        return ""
    local = timezone.localtime(value)
    return f"{date_format(local, 'DATETIME_FORMAT')} ({local.tzname()})"


def shown_value(value: Any) -> Any:
    """A stored value as the contact reads it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, models.Model):
        return str(value)
    return value


def value_of(row: models.Model, source: str | Any) -> Any:
    """The value of `source` (a path like "mailing_list__name", or a function) on `row`,
    with a field's choice shown by its label."""
    if callable(source):
        return shown_value(source(row))
    target: Any = row
    *hops, name = source.split("__")
    for hop in hops:
        target = getattr(target, hop, None)
        if target is None:
            return ""
    display = getattr(target, f"get_{name}_display", None)
    if callable(display):
        return display()
    return shown_value(getattr(target, name, None))


def _columns(entry: Entry) -> tuple[Column, ...]:
    part = entry.contact_part
    assert part is not None
    if part.columns:
        return part.columns
    meta = entry.model._meta
    return tuple(
        Column(str(getattr(meta.get_field(name), "verbose_name", name)), name)
        for name in entry.columns
    )


def rows_of(entry: Entry, contacts: Contacts) -> models.QuerySet[Any]:
    part = entry.contact_part
    assert part is not None
    return part.queryset(entry.model, contacts)


def sections(contacts: Contacts) -> list[Section]:
    """Everything the account holds on these contacts (one, from their preference page),
    table by table, in the map's order (GDPR art. 15)."""
    found: list[Section] = []
    for entry in datamap.contact_entries():
        part = entry.contact_part
        assert part is not None
        if not part.shown:
            continue
        rows = rows_of(entry, contacts).order_by(*part.order_by)
        if part.present is not None:
            found.extend(part.present(rows))
            continue
        columns = _columns(entry)
        section = Section(str(part.title), [str(c.label) for c in columns])
        for row in rows.iterator(chunk_size=500):
            section.rows.append([value_of(row, c.source) for c in columns])
        found.append(section)
    return found


def erasure_order() -> list[Entry]:
    """Shared rows first, then deeper paths, rows found by address with them, the
    contact's row last."""

    def key(entry: Entry) -> tuple[bool, bool, int]:
        part = entry.contact_part
        assert part is not None
        depth = len(part.path.split("__")) if part.path else (0 if part.path == "" else 1)
        return (part.path == "", part.erase_rows is None, -depth)

    return sorted(datamap.contact_entries(), key=key)


def erase(contacts: Contacts) -> dict[str, int]:
    """Erase these contacts from every table of the map, in the caller's transaction.
    Returns what was done, per table ("deleted audience.Contact": n, ...)."""
    done: dict[str, int] = {}
    for entry in erasure_order():
        part = entry.contact_part
        assert part is not None
        rows = part.erased(entry.model, contacts)
        if part.fold is not None:
            part.fold(rows, contacts)
        if part.erase == ContactErasure.DELETE:
            # By id: a query through a join or a union cannot be deleted as it stands.
            ids = list(rows.values_list("pk", flat=True))
            n, _ = entry.model._default_manager.filter(pk__in=ids).delete()
            done[f"deleted {entry.label}"] = n
        elif part.erase == ContactErasure.ANONYMISE:
            n = rows.update(**part.anonymise_with)
            done[f"anonymised {entry.label}"] = n
    return done
