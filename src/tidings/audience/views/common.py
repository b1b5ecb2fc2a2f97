"""What the audience's pages share."""

from __future__ import annotations


def int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
