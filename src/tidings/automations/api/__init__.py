"""HTTP API routes of the automations app, mounted by tidings.api under /api/v1/:
automations (`automations.py`), A/B tests (`splittests.py`) and outgoing webhook
endpoints (`webhooks.py`), each a router of its own. Every route starts from the key's
account: another account's object is a 404."""

from __future__ import annotations

from ninja import Router

from tidings.automations.api.automations import router as automations
from tidings.automations.api.splittests import router as splittests
from tidings.automations.api.webhooks import router as webhooks

router = Router()
router.add_router("/", automations)
router.add_router("/", splittests)
router.add_router("/", webhooks)
