"""Files people really have: a French CSV with `;` separators, in Latin-1 or UTF-8, its
headers recognised, each attribute column's type guessed from the first rows and
declared for the account, values stored in their typed form, rows whose value does not
fit refused with the reason; then "age greater than 40" finds exactly the right people
(run on PostgreSQL and on SQLite: the suite runs on both)."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
from django.urls import reverse

from tests.transfer.conftest import prepare, report_rows, run, upload
from tidings.audience import attribute_types, segments, services
from tidings.audience.models import Contact, ContactAttribute
from tidings.transfer import mapping
from tidings.transfer import services as transfer
from tidings.transfer.errors import TransferError
from tidings.transfer.models import ImportJob

FRENCH = (
    "Prénom;Nom;Courriel;Âge;Date d'inscription;Client fidèle;Ville\n"
    "Marie;Dupont;marie@example.fr;41;15/03/2024;oui;Paris\n"
    "Jean;Martin;jean@example.fr;40;02/01/2025;non;Lyon\n"
    "Zoé;Lefèvre;zoe@example.fr;67,5;31/12/2024;oui;Nantes\n"
    "Luc;Bernard;luc@example.fr;9;2023-06-01;non;Lille\n"
    "Élise;Petit;elise@example.fr;1 041;01/01/2025;oui;Metz\n"
)
# Refused: an age that is no number, a date that does not exist, a yes/no that is neither.
BAD_ROWS = (
    "Paul;Roux;paul@example.fr;quarante;01/02/2024;oui;Brest\n"
    "Anne;Morel;anne@example.fr;52;31/02/2024;oui;Caen\n"
    "Léa;Fournier;lea@example.fr;33;01/02/2024;peut-être;Nice\n"
)


TYPES = ["text", "text", "text", "number", "date", "boolean", "text"]


def _age_over(account, years: int) -> set[str]:  # type: ignore[no-untyped-def]
    rules = {
        "match": "all",
        "conditions": [{"field": "attribute", "key": "age", "op": "gt", "value": str(years)}],
    }
    return set(segments.matching(account, rules).values_list("email", flat=True))


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8"])
def test_a_french_file_is_imported_with_its_headers_and_typed_values(customer, encoding):
    job = upload(customer, FRENCH.encode(encoding), "contacts.csv")
    assert job.delimiter == ";"
    assert job.columns[0] == "Prénom" and job.columns[3] == "Âge"
    assert job.mapping == [
        "first_name",
        "last_name",
        "email",
        "attribute:age",
        "attribute:date_d_inscription",
        "attribute:client_fidele",
        "attribute:ville",
    ]
    assert job.types == TYPES
    job = prepare(customer, FRENCH.encode(encoding), targets=job.mapping)
    job = run(job)
    assert job.status == ImportJob.Status.DONE and job.count("added") == 5
    marie = Contact.objects.get(email="marie@example.fr")
    # Greeted by her first name, not "friend".
    assert marie.name == "Marie Dupont" and marie.first_name == "Marie"
    assert marie.attributes == {
        "age": 41,
        "date_d_inscription": "2024-03-15",
        "client_fidele": True,
        "ville": "Paris",
    }
    assert Contact.objects.get(email="zoe@example.fr").attributes["age"] == 67.5
    assert Contact.objects.get(email="elise@example.fr").attributes["age"] == 1041
    assert Contact.objects.get(email="zoe@example.fr").name == "Zoé Lefèvre"
    assert attribute_types.types_of(customer.account) == {
        "age": "number",
        "date_d_inscription": "date",
        "client_fidele": "boolean",
        "ville": "text",
    }
    account = customer.account
    # 41, 67.5 and 1,041 are greater than 40; 40 and 9 are not (as text, "9" > "40").
    assert _age_over(account, 40) == {"marie@example.fr", "zoe@example.fr", "elise@example.fr"}
    before_2025 = {
        "match": "all",
        "conditions": [
            {
                "field": "attribute",
                "key": "date_d_inscription",
                "op": "before",
                "value": "2025-01-01",
            }
        ],
    }
    found = set(segments.matching(account, before_2025).values_list("email", flat=True))
    assert found == {"marie@example.fr", "zoe@example.fr", "luc@example.fr"}
    loyal = {
        "match": "all",
        "conditions": [{"field": "attribute", "key": "client_fidele", "op": "eq", "value": "oui"}],
    }
    assert segments.size(account, loyal) == 3
    assert report_rows(job) == []


def test_rows_whose_value_does_not_fit_its_type_are_refused_with_the_reason(customer):
    # The types as guessed from rows like the first five (the bad ones further down).
    job = run(prepare(customer, (FRENCH + BAD_ROWS).encode(), types=TYPES))
    assert job.count("added") == 5 and job.count("rejected") == 3
    refused = {row[0]: row[1] for row in report_rows(job)}
    assert set(refused) == {"7", "8", "9"}
    assert refused["7"] == "column “Âge” is a number: “quarante” is not a number"
    assert "column “Date d'inscription” is a date: “31/02/2024” is not a date" in refused["8"]
    assert "column “Client fidèle” is a yes/no: “peut-être” is not yes or no" in refused["9"]
    # Refused rows wrote nothing: not even a contact stored with text in a number.
    assert not Contact.objects.filter(email__in=["paul@example.fr", "anne@example.fr"]).exists()
    assert not Contact.objects.filter(email="lea@example.fr").exists()


def test_a_bad_value_for_an_existing_contact_changes_nothing_of_them(customer):
    run(prepare(customer, FRENCH.encode()))
    marie = Contact.objects.get(email="marie@example.fr")
    before = (marie.name, dict(marie.attributes), marie.updated_at)
    again = (
        FRENCH.splitlines()[0] + "\nMarine;Durand;marie@example.fr;vieille;15/03/2024;oui;Rome\n"
    )
    job = run(prepare(customer, again.encode(), mode="update", types=TYPES))
    assert job.count("rejected") == 1 and job.count("updated") == 0
    marie.refresh_from_db()
    assert (marie.name, marie.attributes, marie.updated_at) == before


def test_a_guessed_type_can_be_changed_and_values_then_follow_it(customer):
    job = upload(customer, FRENCH.encode(), "contacts.csv")
    types = list(job.types)
    types[3] = "text"  # the customer wants the age kept as written
    transfer.set_mapping(job, targets=job.mapping, types=types, mode="add", list_ids=[])
    job.refresh_from_db()
    assert job.types[3] == "text"
    transfer.start_import(
        job, by=customer, legal_basis="contract", basis_date=None, statement="Our customers"
    )
    run(job)
    assert Contact.objects.get(email="elise@example.fr").attributes["age"] == "1 041"
    assert ContactAttribute.objects.get(account=customer.account, key="age").kind == "text"


def test_a_column_for_an_attribute_declared_with_another_type_is_refused_at_mapping(customer):
    services.declare_attributes(customer.account, {"age": "date"})
    job = upload(customer, FRENCH.encode(), "contacts.csv")
    with pytest.raises(TransferError, match="“age” is declared as date"):
        transfer.set_mapping(job, targets=job.mapping, mode="add", list_ids=[])
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED
    assert ContactAttribute.objects.get(account=customer.account, key="age").kind == "date"


def test_the_mapping_page_shows_the_guessed_types_and_takes_a_change(client, customer):
    client.force_login(customer)
    job = upload(customer, FRENCH.encode("latin-1"), "contacts.csv")
    url = reverse("transfer:import_map", args=[job.pk])
    page = client.get(url).content.decode()
    assert 'name="type_3"' in page
    assert '<option value="number" selected>' in page
    form = {"mode": "add"}
    for i, target in enumerate(job.mapping):
        is_attribute = target.startswith(mapping.ATTRIBUTE_PREFIX)
        form[f"target_{i}"] = "attribute" if is_attribute else target
        form[f"key_{i}"] = target.removeprefix(mapping.ATTRIBUTE_PREFIX) if is_attribute else ""
        form[f"type_{i}"] = job.types[i]
    form["type_5"] = "text"
    response = client.post(url, form)
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.types[5] == "text" and job.types[3] == "number"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("Prénom;Nom;Courriel", ["first_name", "last_name", "email"]),
        ("PRENOM;NOM;E-mail", ["first_name", "last_name", "email"]),
        ("Nom;Adresse e-mail", ["name", "email"]),
        ("Vorname;Nachname;E-Mail-Adresse", ["first_name", "last_name", "email"]),
        ("Vorname;Name;E-Mail", ["first_name", "last_name", "email"]),
        ("Nombre;Apellidos;Correo electrónico", ["first_name", "last_name", "email"]),
        ("Nombre;Apellido;Correo", ["first_name", "last_name", "email"]),
        ("Nome;Cognome;Posta elettronica", ["first_name", "last_name", "email"]),
        ("Voornaam;Achternaam;E-mailadres", ["first_name", "last_name", "email"]),
        ("First name;Last name;Email", ["first_name", "last_name", "email"]),
    ],
)
def test_headers_are_recognised_in_six_languages(headers, expected):
    assert mapping.suggest(headers.split(";")) == expected


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Prénom", "prenom"),
        ("Âge", "age"),
        ("Date d'inscription", "date_d_inscription"),
        ("Straße", "strasse"),
        ("Código postal", "codigo_postal"),
        ("Città", "citta"),
        ("Город", "город"),
        ("!!!", "column"),
    ],
)
def test_an_unrecognised_header_becomes_a_readable_attribute_name(header, key):
    assert mapping.attribute_key(header) == key
    services.check_attribute_name(key)


def test_an_import_brings_the_values_already_held_to_the_declared_type(customer):
    services.add_contact(customer.account, "old@example.fr", attributes={"age": "58"})
    run(prepare(customer, FRENCH.encode()))
    assert Contact.objects.get(email="old@example.fr").attributes == {"age": 58}
    assert _age_over(customer.account, 40) == {
        "marie@example.fr", "zoe@example.fr", "elise@example.fr", "old@example.fr",
    }  # fmt: skip


def test_a_type_that_values_already_held_do_not_fit_is_refused_at_mapping(customer):
    services.add_contact(customer.account, "old@example.fr", attributes={"age": "old"})
    job = upload(customer, FRENCH.encode(), "contacts.csv")
    with pytest.raises(TransferError, match="“age” that is not a number"):
        transfer.set_mapping(job, targets=job.mapping, mode="add", list_ids=[])
    assert not ContactAttribute.objects.exists()


def test_a_workbooks_typed_cells_fit_their_types(customer):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Courriel", "Âge", "Inscription", "Code postal", "Actif"])
    sheet.append(["ada@example.org", 41, dt.datetime(2024, 3, 15), 75001, True])
    sheet.append(["bob@example.org", 39.5, dt.date(2025, 1, 2), "01000", False])
    out = io.BytesIO()
    book.save(out)
    job = upload(customer, out.getvalue(), "contacts.xlsx")
    assert job.types[1:] == ["number", "date", "text", "boolean"]
    run(prepare(customer, out.getvalue(), name="contacts.xlsx"))
    assert Contact.objects.get(email="ada@example.org").attributes == {
        "age": 41, "inscription": "2024-03-15", "code_postal": "75001", "actif": True,
    }  # fmt: skip
    assert Contact.objects.get(email="bob@example.org").attributes == {
        "age": 39.5, "inscription": "2025-01-02", "code_postal": "01000", "actif": False,
    }  # fmt: skip
