"""Public pages can be read with no account, no cookie and nothing fetched from elsewhere."""

import pytest
from django.urls import reverse

from tests.public.pages import read
from tidings.privacy.policy import publish_policy

PUBLIC_PAGES = [
    ("public:home", {}),
    ("public:privacy", {}),
    ("public:contact", {}),
    ("public:policy_version", {"number": 1}),
]


@pytest.mark.promise("P29")
@pytest.mark.parametrize(("name", "kwargs"), PUBLIC_PAGES)
def test_public_page_is_served_to_an_anonymous_visitor_without_any_cookie(client, db, name, kwargs):
    publish_policy()

    response = client.get(reverse(name, kwargs=kwargs))

    assert response.status_code == 200
    assert not response.cookies, f"cookies set: {list(response.cookies)}"
    assert not client.cookies


@pytest.mark.promise("P29")
@pytest.mark.parametrize(("name", "kwargs"), PUBLIC_PAGES)
def test_public_page_loads_nothing_from_another_site(client, db, name, kwargs):
    publish_policy()

    page = read(client.get(reverse(name, kwargs=kwargs)))

    assert page.resources, "the page should at least load its stylesheet"
    for address in page.resources:
        assert address.startswith("/") and not address.startswith("//"), address


@pytest.mark.promise("P29")
def test_a_missing_policy_version_sets_no_cookie_either(client, db):
    response = client.get(reverse("public:policy_version", kwargs={"number": 99}))

    assert response.status_code == 404
    assert not response.cookies
