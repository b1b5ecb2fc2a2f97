"""Campaigns of a French account: Tidings's default layout and the footer it adds speak
French to the contacts, as the account chose in My Account."""

from __future__ import annotations

import pytest

from tests.factories import populate_account
from tidings.campaigns import rendering
from tidings.campaigns.models import Campaign
from tidings.core import locales
from tidings.sending import tracking


def test_the_default_layout_exists_in_french_and_falls_back_to_english():
    french = rendering.default_layout_html("fr")
    assert '<html lang="fr"' in french and "Se désinscrire" in french
    assert "{{ content }}" in french and "{{ unsubscribe_url }}" in french
    assert rendering.default_layout_html("de") == rendering.default_layout_html()
    assert "Unsubscribe" in rendering.default_layout_html()


@pytest.mark.django_db
def test_a_french_accounts_campaign_uses_the_french_default_layout(customer):
    customer.account.language = "fr"
    customer.account.save()
    populate_account(customer.account)
    campaign = Campaign.objects.get(account=customer.account, name="The account's campaign")
    campaign.layout = None
    assert rendering.layout_source(campaign) == rendering.default_layout_html("fr")


def test_the_footer_tidings_adds_is_in_the_accounts_language():
    with locales.language("fr"):
        html, text = tracking.add_footer(
            "<html><body>Bonjour</body></html>", "Bonjour", unsubscribe_url="https://t.example/u"
        )
    assert "Désinscrivez-vous" in html and "Se désinscrire\u00a0: https://t.example/u" in text
