"""Cells that a spreadsheet would run as a formula are written as plain text.

A value that starts with "=", "+", "-", "@", a tab or a carriage return may be taken as a
formula by Excel or LibreOffice (CSV injection): it gets a leading single quote, which
makes it text in every format. Numbers are written as numbers and need nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_row(values: Iterable[Any]) -> list[Any]:
    return [neutralise(v) for v in values]
