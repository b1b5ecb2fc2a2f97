from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def operator(settings: Any) -> dict[str, str]:
    """An operator whose every value is distinctive, so a page can be searched for it."""
    # A new dict, not an edit in place: the settings fixture restores only what it replaced.
    settings.OPERATOR = {
        "name": "Harbour Post Ltd",
        "privacy_contact_name": "Mira Okafor",
        "privacy_email": "privacy@harbourpost.example",
        "support_email": "help@harbourpost.example",
        "postal_address": "7 Quay Lane, 4020 Porthaven",
        "data_location": "Frankfurt, Germany",
        "authority_name": "the Porthaven Data Protection Commission",
        "authority_url": "https://dpc.porthaven.example/complaints",
    }
    return settings.OPERATOR
