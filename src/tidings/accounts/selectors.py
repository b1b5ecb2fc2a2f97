"""Reads for My Account: everything the data map says Tidings holds on a customer (P15)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext

from tidings.accounts.models import Account, User
from tidings.core import datamap

# How many rows of one kind My Account shows before linking to the full export.
SHOWN_ROWS = 50


@dataclass
class HeldData:
    entry: datamap.Entry
    columns: list[str]
    rows: list[list[Any]]
    total: int

    @property
    def title(self) -> str:
        # The names of tables and columns are in the catalog: privacy/labels.py.
        return gettext(self.entry.verbose_name)

    # More columns than a card holds side by side: each row is shown as a record.
    WIDE = 8

    @property
    def wide(self) -> bool:
        return len(self.columns) > self.WIDE

    @property
    def records(self) -> list[list[tuple[str, Any]]]:
        """Each row as (column, value) pairs, for a table too wide to show as one."""
        return [list(zip(self.columns, row, strict=False)) for row in self.rows]


def _display(obj: models.Model, field: str) -> Any:
    value = getattr(obj, field)
    if getattr(obj._meta.get_field(field), "choices", None):
        return getattr(obj, f"get_{field}_display")()  # the label, in the reader's language
    if isinstance(value, bool):
        return gettext("on") if value else gettext("off")
    if isinstance(value, datetime):  # in the reader's language and time zone
        return date_format(timezone.localtime(value), "DATETIME_FORMAT")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else value


def _label(model: type[models.Model], field: str) -> str:
    f = model._meta.get_field(field)
    return gettext(str(getattr(f, "verbose_name", field)))


def data_held_on(account: Account) -> list[HeldData]:
    """One table per data map entry that holds rows about this account."""
    held = []
    for entry in datamap.customer_entries():
        if not entry.exported:
            continue
        qs = entry.customer_rows(account)
        total = qs.count()
        if total == 0:
            continue
        columns = list(entry.columns)
        # Only the shown columns: the others may be large encrypted values (the desk's
        # attachments), decrypted for nothing when a whole row is loaded.
        shown = qs.only("pk", *columns).order_by("pk")[:SHOWN_ROWS]
        rows = [[_display(obj, c) for c in columns] for obj in shown]
        labels = [_label(entry.model, c) for c in columns]
        held.append(HeldData(entry=entry, columns=labels, rows=rows, total=total))
    return held


def language_of(address: str) -> str | None:
    """The language the user behind `address` (current or pending) reads mail in."""
    found = (
        User.objects.filter(Q(email__iexact=address) | Q(pending_email__iexact=address))
        .exclude(language="")
        .values_list("language", flat=True)
        .first()
    )
    return found or None
