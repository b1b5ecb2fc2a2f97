"""HTTP API routes: a/b tests (docs/api.md)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["a/b tests"])
