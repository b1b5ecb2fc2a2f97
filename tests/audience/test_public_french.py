"""The pages a contact reads (the hosted form, the confirmation, the preference page, their
data, the unsubscribe pages) in French when their browser asks for it: the page says so
(`lang`), and every notice and error, dates included, is in French."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.audience.conftest import path_of
from tidings.audience import links, services
from tidings.audience.models import Contact

FRENCH = {"HTTP_ACCEPT_LANGUAGE": "fr-FR,fr;q=0.9"}


@pytest.fixture
def reader(account, newsletter, offers):  # type: ignore[no-untyped-def]
    return services.add_contact(
        account,
        "reader@example.org",
        name="Rea Der",
        attributes={"city": "Ghent", "vip": True},
        lists=[newsletter, offers],
    )


def read(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.content.decode())


def lang(response) -> str:  # type: ignore[no-untyped-def]
    return re.search(r'<html lang="([^"]+)"', response.content.decode()).group(1)


def prefs(contact: Contact) -> str:
    return path_of(links.preference_url(contact))


# --- the language of the page ------------------------------------------------------


@pytest.mark.parametrize(
    "page",
    ["form", "confirm", "preferences", "my_data", "unsubscribe", "invalid link", "expired link"],
)
def test_every_public_page_says_it_is_in_the_readers_language(
    client, signup_form, newsletter, reader, page, settings
):
    paths = {
        "form": f"/subscribe/{signup_form.uuid}/",
        "confirm": path_of(links.confirmation_url(reader, [newsletter])),
        "preferences": prefs(reader),
        "my_data": f"{prefs(reader)}data/",
        "unsubscribe": path_of(links.unsubscribe_url(reader, newsletter)),
        "invalid link": prefs(reader)[:-3] + "xx/",
        "expired link": prefs(reader),
    }
    later = timezone.now() + timedelta(days=settings.PREFERENCE_LINK_DAYS + 1)
    with time_machine.travel(later if page == "expired link" else timezone.now()):
        french = client.get(paths[page], **FRENCH)
        english = client.get(paths[page], HTTP_ACCEPT_LANGUAGE="en")
    assert (lang(french), lang(english)) == ("fr", "en")
