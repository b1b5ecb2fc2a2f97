"""Errors a visitor can meet look like the rest of the site."""


def test_an_unknown_address_gets_the_sites_own_not_found_page(client, db):
    response = client.get("/no/such/page/")

    assert response.status_code == 404
    page = response.content.decode()
    assert "This page does not exist" in page and "Privacy policy" in page
