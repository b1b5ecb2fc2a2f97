"""The canary: one contact with a unique address and a unique marker goes through every
producer and feature that stores a contact's data; the customer erases them in one
click; then every text, JSON and binary column of every table of the database and every
file under the data directory (zip members opened) is searched for the address, in each
of its forms, and for the marker. Nothing may remain but the keyed hash of the address
on the account's suppression list (P13, P17)."""

from __future__ import annotations

import re
import uuid
import zipfile
from pathlib import Path

import pytest
from django.db import connection

from tests.audience.conftest import path_of
from tests.automations.conftest import welcome_series
from tests.transfer.conftest import prepare, run
from tidings.accounts import apikeys
from tidings.audience import links, mailing_lists, rights, services, signup
from tidings.audience.models import Contact, ContactRequest, MailingList, SuppressedContact
from tidings.automations import engine as automations
from tidings.automations import services as automation_services
from tidings.automations import webhooks
from tidings.automations.models import StepRun
from tidings.campaigns.models import Campaign
from tidings.core.digests import email_digest
from tidings.privacy import portability
from tidings.sending import bounces, lifecycle
from tidings.sending import services as sending
from tidings.sending.models import Relay, TrackingEvent
from tidings.transfer import services as transfer
from tidings.transfer.models import ImportJob

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("customer_relays_on_loopback"),
]

TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea")


def needles(address: str, marker: str) -> list[str]:
    """The address as typed, lower-cased, with its domain in IDNA and in Unicode; the marker."""
    local, _, domain = address.rpartition("@")
    ascii_domain = domain.encode("idna").decode("ascii")
    forms = {address, address.lower(), f"{local}@{ascii_domain}", f"{local}@{ascii_domain}".lower()}
    return [*sorted(forms), marker]


def rows_in_database(found: list[str]) -> list[str]:
    """Every column of a text, JSON or binary type of every table, searched for each
    needle (case-insensitively); "table.column: needle" for each hit."""
    hits = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = ANY(%s) "
            "AND table_name IN (SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE')",
            [list(TEXT_TYPES)],
        )
        columns = cursor.fetchall()
        for table, column, kind in columns:
            value = f"encode(\"{column}\", 'escape')" if kind == "bytea" else f'"{column}"::text'
            for needle in found:
                cursor.execute(
                    f'SELECT count(*) FROM "{table}" WHERE {value} ILIKE %s',  # noqa: S608
                    [f"%{needle}%"],
                )
                if cursor.fetchone()[0]:
                    hits.append(f"{table}.{column}: {needle}")
    return hits


def contents(path: Path) -> list[tuple[str, bytes]]:
    """A file's bytes, and those of each member when it is a zip (XLSX, archives)."""
    data = path.read_bytes()
    found = [(str(path), data)]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                inner = archive.read(name)
                found.append((f"{path}!{name}", inner))
                if name.endswith((".zip", ".xlsx")):
                    inner_path = path.with_name(f".canary-{uuid.uuid4().hex}")
                    inner_path.write_bytes(inner)
                    try:
                        found += [(f"{path}!{n}", b) for n, b in contents(inner_path)[1:]]
                    finally:
                        inner_path.unlink()
    return found


def files_holding(roots: list[Path], found: list[str]) -> list[str]:
    """Every file under `roots` (zip members opened) that holds a needle, in UTF-8 or
    UTF-16 (XLS keeps text in UTF-16), whatever the case."""
    hits = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            for name, data in contents(path):
                lowered = data.lower()
                for needle in found:
                    for encoding in ("utf-8", "utf-16-le"):
                        if needle.lower().encode(encoding) in lowered:
                            hits.append(f"{name}: {needle}")
    return sorted(set(hits))


def html_links(raw: bytes, kind: str) -> list[str]:
    import email
    import email.policy

    message = email.message_from_bytes(raw, policy=email.policy.default)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return [
        path_of(u.replace("&amp;", "&"))
        for u in re.findall(r'(?:href|src)="([^"]+)"', html)
        if f"/t/{kind}/" in u
    ]


@pytest.mark.promise("P13", "P17")
def test_an_erased_contact_leaves_nothing_but_the_keyed_hash(
    client, customer, smtp_server, settings
):
    settings.EMAIL_DELIVERY = "outbox"  # the operator's mail goes to the local outbox
    settings.TRANSFER_DIR = Path(settings.DATA_DIR) / "transfer"
    tag = uuid.uuid4().hex[:10]
    address = f"Canary.{tag}@Bücher-{tag}.example.org"
    marker = f"MARKER{tag}X"
    stored = services.normalise_email(address)
    account = customer.account
    sending.set_postal_address(account, "12 Baker Lane, 1000 Brussels", by=customer)
    sending.set_tracking(account, "contact")
    newsletter = MailingList.objects.create(
        account=account, name="Newsletter", visibility="public", optin="double"
    )
    # A welcome series on the list, and an endpoint told of every subscription (its
    # messages carry the address).
    automation_services.start(welcome_series(account, newsletter, customer), by=customer)
    settings.ALLOWED_WEBHOOK_HOSTS = ["127.0.0.1"]
    webhooks.create_endpoint(
        account, url="http://127.0.0.1:9/hook", events=["contact.subscribed"], by=customer
    )

    # An import from a CSV file: the address twice (the second row is rejected, and
    # the report of rejected rows repeats it), attributes and the marker.
    job = run(
        prepare(
            customer,
            (
                "email,name,city\n"
                f"{address},Cana Ry {marker},City {marker}\n"
                f"{address.upper()},Again {marker},x\n"
                "not-an-address,Other,y\n"
            ).encode(),
            lists=[newsletter],
            mode="update",
        )
    )
    assert job.status == ImportJob.Status.DONE, job.error
    contact = Contact.objects.get(account=account, email=stored)
    services.update_contact(
        contact, tags=["fan", f"tag-{marker}"], attributes={"city": f"City {marker}"}
    )

    # A signup through the form, with its proof of consent and the double opt-in mail
    # (through the operator's relay: no relay of the account's yet, so the local outbox).
    form = mailing_lists.save_form(
        account, name="Footer", lists=[newsletter], consent_text="Yes please"
    )
    signup.request_signup(
        form, email=address, lists=[newsletter], ip="192.0.2.77", user_agent=f"Firefox {marker}"
    )
    signup.confirm_signup(links.confirmation_token(contact, [newsletter]))

    # A campaign through the real pipeline to a real SMTP server, opened and clicked.
    Relay.objects.create(
        account=account, name="relay", host=smtp_server.host, port=smtp_server.port, security="none"
    )
    campaign = Campaign.objects.create(
        account=account,
        name="Spring news",
        subject="News for {{ contact.first_name }}",
        from_email="news@news.example.org",
        # The link carries the address: the click recorded holds it.
        body="<p>Hello {{ contact.name }} "
        '<a href="https://example.org/r?who={{ contact.email }}">read</a></p>',
        track_opens=True,
        track_clicks=True,
    )
    campaign.lists.add(newsletter)
    lifecycle.start_campaign(campaign)
    (message,) = [m for m in smtp_server.messages if m["Subject"] == "News for Cana"]
    raw = message.as_bytes()
    for link in html_links(raw, "o") + html_links(raw, "c"):
        client.get(link)
    assert TrackingEvent.objects.filter(delivery__contact=contact).count() == 2

    # The welcome series' first step goes to them; the endpoint's message is written.
    automations.run()
    assert StepRun.objects.filter(contact=contact).count() == 1
    assert webhooks.scan() >= 1

    # A transactional message through the API, to the address as the shop typed it.
    key = apikeys.create_api_key(account, name="shop", by=customer)[1]
    response = client.post(
        "/api/v1/tx",
        data={
            "to": address.upper(),
            "subject": f"Order {marker}",
            "body": f"<p>Order {marker} for {{{{ contact.email }}}}</p>",
            "from_email": "shop@news.example.org",
        },
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 202, response.content

    # A bounce reported for it, naming the address.
    bounces.soft_bounce(
        contact, campaign=campaign, source="dsn", detail=f"452 4.2.2 <{stored}> full {marker}"
    )

    # Requests from the preference page, one answered with the marker, and a restriction.
    access, _ = rights.request_from_contact(contact, kind="access", details=f"All of it {marker}")
    rights.answer_request(account, access, answer=f"Dear Cana Ry {marker}, here it is.")
    limit, _ = rights.request_from_contact(contact, kind="restriction", details=marker)
    rights.fulfil_restriction(account, limit)
    erasure, _ = rights.request_from_contact(contact, kind="erasure", details=f"Forget {marker}")

    # The contact reads and downloads their data; the customer exports their contacts
    # and asks for the archive of all their data.
    prefs = path_of(links.preference_url(contact))
    assert marker in client.get(f"{prefs}data/").content.decode()
    assert marker in client.get(f"{prefs}data/csv/").content.decode("utf-8-sig")
    for fmt in ("csv", "xlsx", "xls"):
        transfer.start_export(account, by=customer, fmt=fmt)
    portability.request_account_export(account, by=customer, fmt="csv")

    # Proof that the canary was seen everywhere it went, before the erasure.
    data_dirs = [Path(settings.DATA_DIR), Path(settings.TRANSFER_DIR)]
    found = needles(address, marker)
    before_db, before_files = rows_in_database(found), files_holding(data_dirs, found)
    for table in (
        "audience_contact", "audience_consentproof", "audience_contactrequest",
        "sending_outboundmail", "sending_bouncerecord", "sending_trackingevent",
        "outbox_outboxmessage", "automations_webhookmessage",
    ):  # fmt: skip
        assert any(hit.startswith(f"{table}.") for hit in before_db), (table, before_db)
    for kind in ("-rejected.csv", ".xlsx", ".xls", ".csv", ".zip"):
        assert any(kind in hit for hit in before_files), (kind, before_files)

    # The customer erases the contact in one click.
    client.force_login(customer)
    assert client.post(f"/requests/{erasure.uuid}/", {"action": "erase"}).status_code == 302
    client.logout()

    left_in_db, left_in_files = rows_in_database(found), files_holding(data_dirs, found)
    assert not left_in_db, left_in_db
    assert not left_in_files, left_in_files
    # What remains: the keyed hash, and the requests as records without the person.
    assert SuppressedContact.objects.filter(account=account, digest=email_digest(stored)).exists()
    assert ContactRequest.objects.filter(account=account, contact=None).count() == 3
    # The last word to them went, and left no copy.
    assert any("has erased" in str(m["Subject"]) for m in smtp_server.to(stored))
