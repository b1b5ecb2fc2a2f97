"""The pages a contact reads (the hosted form, the confirmation, the preference page, their
data, the unsubscribe pages) in French when their browser asks for it: the page says so
(`lang`), and every notice and error, dates included, is in French."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
import time_machine
from django.utils import timezone

from tests.audience.conftest import path_of
from tidings.audience import links, rights, services, setup
from tidings.audience.models import Contact, Subscription
from tidings.sending import tokens as sending_tokens

FRENCH = {"HTTP_ACCEPT_LANGUAGE": "fr-FR,fr;q=0.9"}


def read(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.content.decode())


def lang(response) -> str:  # type: ignore[no-untyped-def]
    return re.search(r'<html lang="([^"]+)"', response.content.decode()).group(1)


def prefs(contact: Contact) -> str:
    return path_of(links.preference_url(contact))


# --- the language of the page --------------------------------------------------------


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


# --- notices of the preference and unsubscribe pages ---------------------------------


def test_leaving_a_list_is_said_in_french(client, reader, newsletter):
    response = client.post(prefs(reader), {"action": "leave", "list": newsletter.uuid}, **FRENCH)
    assert "Vous avez quitté «\xa0Newsletter\xa0». C'est effectif immédiatement." in read(response)
    assert Subscription.objects.get(contact=reader, mailing_list=newsletter).status == (
        "unsubscribed"
    )


def test_leaving_everything_is_said_in_french(client, reader):
    response = client.post(prefs(reader), {"action": "leave_all"}, **FRENCH)
    page = read(response)
    assert "Vous avez quitté toutes les listes. Vous ne recevrez plus d'e-mails de notre part." in (
        page
    )
    assert "You have left" not in page


def test_saved_details_are_said_in_french(client, reader):
    response = client.post(prefs(reader), {"action": "save", "name": "Rea"}, **FRENCH)
    assert "Vos informations sont enregistrées." in read(response)


def test_a_yes_or_no_attribute_is_shown_and_read_in_french(client, account, reader):
    setup.set_editable_attributes(account, ["vip"])
    page = read(client.get(prefs(reader), **FRENCH))
    assert 'name="attr:vip" value="oui"' in page
    client.post(prefs(reader), {"action": "save", "name": "Rea Der", "attr:vip": "oui"}, **FRENCH)
    reader.refresh_from_db()
    assert reader.attributes["vip"] is True


def ask(client, contact: Contact, kind: str):  # type: ignore[no-untyped-def]
    return client.post(prefs(contact), {"action": "request", "kind": kind}, **FRENCH)


def test_a_request_is_acknowledged_in_french_with_french_dates(client, account, reader):
    with time_machine.travel(datetime(2026, 3, 10, 12, tzinfo=UTC)):
        page = read(ask(client, reader, "access"))
        assert (
            f"{account.name} a bien reçu votre demande (accès à mes données) et doit y répondre "
            "au plus tard le 10 avril 2026\xa0; la réponse sera envoyée à reader@example.org."
        ) in page
        again = read(ask(client, reader, "access"))
    assert (
        "Vous l'avez déjà demandé le 10 mars 2026\xa0: la demande est ouverte et doit recevoir "
        "une réponse au plus tard le 10 avril 2026."
    ) in again
    assert "April" not in page + again and "March" not in again


def test_an_expired_preference_link_answers_in_french(client, reader, settings, mailbox):
    path = prefs(reader)
    later = timezone.now() + timedelta(days=settings.PREFERENCE_LINK_DAYS + 1)
    with time_machine.travel(later):
        sent = read(client.post(path, {"action": "send_link"}, **FRENCH))
        left = read(client.post(path, {"action": "leave_all"}, **FRENCH))
    assert "Un nouveau lien est en route vers votre boîte de réception." in sent
    assert "Vous avez quitté toutes les listes." in left


def test_an_old_unsubscribe_link_mails_a_new_link_in_french(
    client, reader, newsletter, settings, mailbox
):
    path = path_of(links.unsubscribe_url(reader, newsletter))
    later = timezone.now() + timedelta(days=settings.PREFERENCE_LINK_DAYS + 1)
    with time_machine.travel(later):
        response = client.post(path, {"action": "send_link"}, **FRENCH)
    assert "Un nouveau lien est en route vers votre boîte de réception." in read(response)


def test_the_contacts_data_downloads_in_french(client, reader):
    response = client.get(f"{prefs(reader)}data/csv/", **FRENCH)
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["tableau", "ligne", "colonne", "valeur"]
    assert ("Vos informations", "reader@example.org") in {(r[0], r[3]) for r in rows[1:]}
    response = client.get(f"{prefs(reader)}data/xlsx/", **FRENCH)
    book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    assert next(book.worksheets[0].iter_rows(values_only=True)) == (
        "tableau", "ligne", "colonne", "valeur"
    )  # fmt: skip


# --- links that do not work, requests refused ----------------------------------------


def test_a_changed_link_is_refused_in_french(client, reader):
    response = client.get(prefs(reader)[:-3] + "xx/", **FRENCH)
    assert response.status_code == 400
    assert "Ce lien n'est pas valide\xa0: il a peut-être été coupé ou modifié." in read(response)


def test_the_link_of_an_erased_contact_says_so_in_french(client, reader):
    path = prefs(reader)
    services.erase_contact(reader)
    response = client.get(path, **FRENCH)
    assert "Nous ne détenons plus cette adresse\xa0: il n'y a rien à modifier." in read(response)


def test_an_expired_link_to_the_contacts_data_is_refused_in_french(client, reader, settings):
    later = timezone.now() + timedelta(days=settings.PREFERENCE_LINK_DAYS + 1)
    path = f"{prefs(reader)}data/"
    with time_machine.travel(later):
        response = client.get(path, **FRENCH)
    assert response.status_code == 400
    assert "Ce lien n'est pas valide ou a expiré." in read(response)


def test_an_expired_confirmation_link_is_refused_in_french(client, reader, newsletter):
    path = path_of(links.confirmation_url(reader, [newsletter]))
    with time_machine.travel(timezone.now() + timedelta(days=30)):
        response = client.post(path, **FRENCH)
    assert response.status_code == 400
    assert "Ce lien de confirmation a expiré\xa0: aucune inscription n'a été faite." in read(
        response
    )


def test_too_many_requests_are_refused_in_french(client, account, reader, monkeypatch):
    monkeypatch.setattr(rights, "REQUESTS_PER_IP_HOUR", 1)
    assert ask(client, reader, "access").status_code == 200
    response = ask(client, reader, "erasure")
    assert response.status_code == 429
    assert "Trop de demandes depuis votre réseau\xa0: veuillez réessayer plus tard." in read(
        response
    )


# --- the titles of the pages that say it is done -------------------------------------


def test_the_one_click_unsubscribe_page_is_titled_in_french(client, reader):
    path = f"/oneclick/{sending_tokens.unsubscribe_token(reader.uuid.hex)}/"
    page = read(client.post(path, **FRENCH))
    assert "<title>Vous êtes désinscrit ·" in page and "Désinscrit le" not in page


def test_the_confirmed_page_is_titled_in_french(client, reader, newsletter):
    path = path_of(links.confirmation_url(reader, [newsletter]))
    page = read(client.post(path, **FRENCH))
    assert "<title>Vous êtes inscrit ·" in page and "Inscrits" not in page


# --- the same card on every contact's page ---------------------------------------------


@pytest.mark.parametrize("page", ["preferences", "invalid link", "closed form"])
def test_every_contact_page_names_its_icon(client, signup_form, reader, page):
    """A page without `<link rel="icon">` makes the browser ask for /favicon.ico, which
    Tidings does not serve: a 404 in the reader's console on every contact page."""
    if page == "closed form":
        signup_form.lists.clear()
    paths = {
        "preferences": prefs(reader),
        "invalid link": prefs(reader)[:-3] + "xx/",
        "closed form": f"/subscribe/{signup_form.uuid}/",
    }
    assert '<link rel="icon" href="/static/favicon.svg' in read(client.get(paths[page]))


def test_a_closed_form_reads_whole_and_names_nobody(client, account, signup_form):
    """Whose the form was is not said (the account may be closed or restricted:
    tests/core/test_tenant_isolation.py), and no sentence is left with a hole where
    its name was ("'s mail is sent by")."""
    signup_form.lists.clear()
    response = client.get(f"/subscribe/{signup_form.uuid}/", **FRENCH)
    page = read(response)
    assert response.status_code == 404
    assert account.name not in page
    assert "<title>Formulaire indisponible · " in page and "Le courrier de  " not in page
    assert "'s mail" not in read(client.get(f"/subscribe/{signup_form.uuid}/"))


def test_the_customers_pages_count_those_who_left_and_date_when(client, customer, reader):
    """One English word, two French ones: "Désinscrits" counts (the lists), "Désinscrit
    le" dates a subscription (the contact's page)."""
    customer.language = "fr"
    customer.save(update_fields=["language"])
    client.force_login(customer)
    lists = read(client.get("/lists/"))
    contact = read(client.get(f"/contacts/{reader.uuid}/"))
    assert '<th scope="col">Désinscrits</th>' in lists and "Désinscrit le" not in lists
    assert '<th scope="col">Désinscrit le</th>' in contact


# --- why an address is refused -----------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("plain", "elle ne contient pas de signe @."),
        ("@example.org", "rien ne précède le signe @."),
        (
            "a b@example.org",
            "la partie avant le signe @ contient des caractères interdits dans une adresse\xa0:"
            " un espace.",
        ),
        (
            "ann@example",
            "la partie après le signe @ ne contient pas de point (un nom de domaine en a un,"
            " comme example.com).",
        ),
        ("a..b@example.org", "elle ne peut pas contenir deux points à la suite."),
        ("x" * 250 + "@example.org", "elle est trop longue (8 caractères de trop)."),
    ],
)
def test_the_form_says_in_french_why_an_address_is_refused(
    client, signup_form, mailbox, email, reason
):
    """email-validator explains in English only: its words would sit in a French sentence."""
    response = client.post(
        f"/subscribe/{signup_form.uuid}/",
        {"email": email, "name": "Ann", "consent": "yes"},
        REMOTE_ADDR="203.0.113.7",
        **FRENCH,
    )
    assert response.status_code == 400
    assert f"n'est pas une adresse e-mail valide\xa0: {reason}" in read(response)
    assert "@-sign" not in read(response)
    assert not Contact.objects.exists() and mailbox == []


def test_adding_a_contact_says_in_french_why_an_address_is_refused(client, customer, account):
    customer.language = "fr"
    customer.save(update_fields=["language"])
    client.force_login(customer)
    response = client.post("/contacts/new/", {"email": "ann@", "legal_basis": "consent"})
    assert "«\xa0ann@\xa0» n'est pas une adresse e-mail valide\xa0: rien ne suit le signe @." in (
        read(response)
    )
    assert not Contact.objects.filter(account=account).exists()
