"""Points of collection (P2): the service that collects personal data says what it
collected, why and on which legal basis; privacy keeps the record.

Collecting happens in every layer (registration in accounts, orders in billing, forms
in audience), the record belongs to privacy (`privacy.models.CollectionRecord`). So the
collecting service calls `record` here, in its own transaction, and privacy connects the
writer from its `AppConfig.ready()`. Nothing collected goes unrecorded: with no writer
connected, `record` fails instead of passing silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal

# Sent with `collection=Collection(...)`; privacy's receiver writes the record.
collected = Signal()


@dataclass(frozen=True)
class Item:
    """One piece of personal data collected, why, and on which legal basis."""

    what: str
    purpose: str
    legal_basis: str


@dataclass(frozen=True)
class Collection:
    point: str
    items: Sequence[Item]
    account: Any = None  # accounts.Account (core names no app above it)
    user: Any = None  # accounts.User


def record(collection: Collection) -> None:
    """Record what `collection` collected, in the caller's transaction."""
    if not collected.has_listeners():
        raise ImproperlyConfigured("No recorder of collections is connected (privacy app)")
    collected.send(sender=Collection, collection=collection)
