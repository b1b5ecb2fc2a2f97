"""HTTP API routes of the campaigns app, mounted by tidings.api under /api/v1/."""

from ninja import Router

router = Router(tags=["campaigns"])
