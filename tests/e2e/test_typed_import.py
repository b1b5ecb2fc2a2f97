"""A French file in the browser: headers recognised, a guessed type changed on the mapping
page, a row with a value that is no age refused with its reason, then "age greater than
40" built in the segment editor, which shows the right count."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Screenshot
from tidings.audience.models import Contact, ContactAttribute

pytestmark = pytest.mark.browser

AGES = [41, 40, 67, 9, 52, 38, 75, 40, 18, 44, 29]  # five people over 40: 41, 67, 52, 75, 44
ROWS = [
    f"Prénom{i};Nom{i};guest{i}@example.fr;{age};{75001 + i};{'oui' if i % 2 else 'non'}"
    for i, age in enumerate(AGES)
]
# Past the first rows that the types are guessed from: an age that is no number.
FRENCH = "\n".join(
    [
        "Prénom;Nom;Courriel;Âge;Code postal;Client fidèle",
        *ROWS,
        "Zoé;Roux;zoe@example.fr;âgée;75011;oui",
    ]
).encode("latin-1")


@pytest.fixture
def logged_in(live_server, settings, page: Page, customer, tmp_path) -> str:  # type: ignore[no-untyped-def]
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.TRANSFER_DIR = tmp_path / "transfer"
    client = Client()
    client.force_login(customer)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return str(live_server.url)


def test_a_french_file_is_imported_typed_and_age_over_40_is_counted_right(
    logged_in: str, page: Page, screenshot: Screenshot, customer
):
    page.goto(logged_in + reverse("transfer:imports"))
    page.get_by_label("File", exact=True).set_input_files(
        {"name": "contacts.csv", "mimeType": "text/csv", "buffer": FRENCH}
    )
    page.get_by_role("button", name="Upload and map the columns").click()

    expect(page.get_by_role("heading", name="map the columns")).to_be_visible()
    expect(page.get_by_label("Column “Prénom”")).to_have_value("first_name")
    expect(page.get_by_label("Column “Nom”")).to_have_value("last_name")
    expect(page.get_by_label("Column “Courriel”")).to_have_value("email")
    expect(page.get_by_label("Column “Âge”")).to_have_value("attribute")
    expect(page.get_by_label("Attribute name for “Âge”")).to_have_value("age")
    expect(page.get_by_label("Type of the attribute “Âge”")).to_have_value("number")
    expect(page.get_by_label("Type of the attribute “Client fidèle”")).to_have_value("boolean")
    # Postal codes look like numbers in these rows; the customer keeps them as text.
    postal = page.get_by_label("Type of the attribute “Code postal”")
    expect(postal).to_have_value("number")
    postal.select_option("text")
    screenshot(page, "mapping")
    page.get_by_role("button", name="Next: the legal basis").click()

    page.get_by_label("consent, collected elsewhere").check()
    page.get_by_label("Date the consent was collected (or the contract made)").fill("2024-02-01")
    page.get_by_label("How and where did they give it?").fill("Formulaire d'inscription")
    page.get_by_label("I confirm that every person").check()
    page.get_by_role("button", name="Import").click()

    expect(page.get_by_role("heading", name="Finished")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("row", name="Added")).to_contain_text("11")
    screenshot(page, "result")
    with page.expect_download() as report:
        page.get_by_role("link", name="Download the refused rows").click()
    refused = report.value.path().read_text(encoding="utf-8-sig").splitlines()
    assert len(refused) == 2
    assert "column “Âge” is a number: “âgée” is not a number" in refused[1]
    first = Contact.objects.get(email="guest0@example.fr")
    assert first.attributes == {"age": 41, "code_postal": "75001", "client_fidele": False}
    assert ContactAttribute.objects.get(account=customer.account, key="code_postal").kind == "text"

    page.goto(logged_in + reverse("audience:segment_new"))
    page.get_by_label("Name", exact=True).fill("Plus de 40 ans")
    page.get_by_label("Field of condition 1").select_option("attribute")
    page.get_by_label("Attribute or list of condition 1").fill("age")
    operator = page.get_by_label("Operator of condition 1")
    # A number offers no "contains".
    expect(operator.locator('option[value="contains"]')).to_be_disabled()
    operator.select_option("gt")
    page.get_by_label("Value of condition 1").fill("40")
    expect(page.locator("#segment-count")).to_have_text("5", timeout=10_000)
    screenshot(page, "segment")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#segment-count")).to_have_text("5")
