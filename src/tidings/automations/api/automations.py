"""HTTP API routes: automations (docs/api.md)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["automations"])
