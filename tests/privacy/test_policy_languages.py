"""The privacy policy in English and French: each version holds both texts, the French
is the English section for section, and readers get the one of their language."""

from __future__ import annotations

import re

import pytest

from tidings.privacy import policy
from tidings.privacy.models import PolicyVersion

pytestmark = pytest.mark.django_db


def _shape(text: str) -> list[str]:
    """The structure of a policy: its headings' levels and its list items, in order."""
    return [m.group(1) for m in re.finditer(r"^(##+ |- )", text, re.M)]


def test_the_french_policy_follows_the_english_section_for_section():
    english, french = policy.render_policy("en"), policy.render_policy("fr")
    assert _shape(english) == _shape(french)
    assert "## Qui nous sommes et comment nous joindre" in french
    # The data map's phrases come translated from the catalog.
    assert "### Base légale : contrat" in french
    assert "Legal basis" not in french and "Retention:" not in french


def test_a_version_holds_both_languages_and_is_published_once():
    version = policy.publish_policy()
    assert version.text == policy.render_policy("en")
    assert version.translations["fr"]["text"] == policy.render_policy("fr")
    assert version.translations["fr"]["changes"] == "Première version."
    assert policy.publish_policy().pk == version.pk
    assert PolicyVersion.objects.count() == 1


def test_readers_get_the_policy_in_their_language(client):
    policy.publish_policy()
    french = client.get("/privacy/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Vos droits" in french and "Première version." in french
    english = client.get("/privacy/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Your rights" in english and "Vos droits" not in english
