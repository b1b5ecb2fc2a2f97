"""Text the database can store.

PostgreSQL refuses the NUL character (U+0000) in `text` and in `jsonb` (a query with one
fails, whatever the column's length); SQLite takes it and cuts the text there in some
readers. Input is refused at the edge with this one check: the API's input schemas and
query strings (`tidings.accounts.api`), and the web forms, whose CharFields already
refuse it through Django's ProhibitNullCharactersValidator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext_lazy as _

NUL = "\x00"
NUL_REFUSED = _("The text contains a NUL character (\\u0000), which cannot be stored.")


def nul_at(value: Any) -> tuple[str | int, ...] | None:
    """Where the first NUL character is in a JSON-like value (a mapping's keys too), as a
    path of keys and indexes; None when there is none."""
    if isinstance(value, str):
        return () if NUL in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and NUL in key:
                return (key.replace(NUL, "\\u0000"),)
            inner = nul_at(item)
            if inner is not None:
                return (key, *inner)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            inner = nul_at(item)
            if inner is not None:
                return (index, *inner)
    return None
