"""The contact page: the operator, its privacy contact and the supervisory authority."""

import pytest
from django.urls import reverse

from tests.public.pages import read


@pytest.mark.promise("P34")
def test_contact_page_shows_operator_privacy_contact_and_postal_address(client, db, operator):
    page = read(client.get(reverse("public:contact")))

    assert operator["name"] in page.text
    assert operator["postal_address"] in page.text
    assert operator["privacy_contact_name"] in page.text
    hrefs = {link.href for link in page.links}
    assert f"mailto:{operator['privacy_email']}" in hrefs
    assert f"mailto:{operator['support_email']}" in hrefs


@pytest.mark.promise("P34")
def test_contact_page_explains_the_right_to_complain_and_links_the_authority(client, db, operator):
    page = read(client.get(reverse("public:contact")))

    assert "right to complain" in page.text
    assert operator["authority_name"] in page.text
    assert operator["authority_url"] in {link.href for link in page.links}
