"""Contacts in the browser: browse, search, edit with typed attributes, delete,
blocklist, and bulk actions on a selection or a whole search result."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tidings.audience import mailability, mailing_lists, services
from tidings.audience.models import ConsentProof, Contact, Subscription
from tidings.audience.selectors import PAGE_SIZE, ContactSearch, page_of


def make(account, n, *, prefix="guest", **extra):  # type: ignore[no-untyped-def]
    return [
        services.add_contact(account, f"{prefix}{i:04d}@example.org", **extra) for i in range(n)
    ]


def test_contacts_are_browsed_newest_first_by_numbered_pages_of_fifty(logged_in, account):
    Contact.objects.bulk_create(
        Contact(account=account, email=f"guest{i:04d}@example.org") for i in range(120)
    )
    first = logged_in.get("/contacts/")
    page = first.context["page"]
    newest = ["guest0119@example.org", "guest0118@example.org"]
    assert [c.email for c in page.contacts][:2] == newest
    assert (page.first, page.last, page.total, page.pages) == (1, 50, 120, 3)
    assert "1\N{EN DASH}50 of 120" in first.content.decode()
    assert 'href="?page=2" aria-label="Page 2"' in first.content.decode()
    second = logged_in.get("/contacts/?page=2").context["page"]
    assert second.contacts[0].email == "guest0069@example.org" and second.first == 51
    third = logged_in.get("/contacts/?page=3").context["page"]
    assert len(third.contacts) == 20 and third.next is None and third.previous == 2
    # A page past the end (or no number) shows the nearest page, not an error.
    assert logged_in.get("/contacts/?page=99").context["page"].number == 3
    assert logged_in.get("/contacts/?page=x").context["page"].number == 1


def test_every_column_sorts_both_ways_and_pages_keep_the_order(logged_in, account):
    for email, name in (
        ("carol@example.org", "Zed"), ("alice@example.org", "Mia"), ("bob@example.org", "Abe")
    ):  # fmt: skip
        services.add_contact(account, email, name=name)
    services.blocklist(Contact.objects.get(email="bob@example.org"))

    def emails(query: str) -> list[str]:
        return [c.email for c in logged_in.get(f"/contacts/?{query}").context["page"].contacts]

    assert emails("") == ["bob@example.org", "alice@example.org", "carol@example.org"]
    assert emails("sort=added") == ["carol@example.org", "alice@example.org", "bob@example.org"]
    assert emails("sort=email") == ["alice@example.org", "bob@example.org", "carol@example.org"]
    assert emails("sort=-email") == ["carol@example.org", "bob@example.org", "alice@example.org"]
    assert emails("sort=name") == ["bob@example.org", "alice@example.org", "carol@example.org"]
    # Active before blocklisted; the same status newest last, then newest first.
    assert emails("sort=status") == ["carol@example.org", "alice@example.org", "bob@example.org"]
    assert emails("sort=-status") == ["bob@example.org", "alice@example.org", "carol@example.org"]
    assert emails("sort=nonsense") == emails("")
    page = logged_in.get("/contacts/?sort=email").content.decode()
    # The sorted column says so, and its header sorts the other way; pages keep the sort.
    assert 'aria-sort="ascending"><a href="?sort=-email">' in page
    many = [f"m{i:03d}@example.org" for i in range(60)]
    for email in many:
        Contact.objects.create(account=account, email=email)
    page = logged_in.get("/contacts/?sort=-email&page=2")
    shown = [c.email for c in page.context["page"].contacts]
    assert shown[0] == sorted([*many, "alice@example.org", "bob@example.org",
                               "carol@example.org"], reverse=True)[50]  # fmt: skip
    assert 'href="?sort=-email&amp;page=1"' in page.content.decode()


def test_a_whole_list_is_counted_from_its_counters_and_a_search_exactly(
    logged_in, account, newsletter
):
    contacts = make(account, 120)
    for contact in contacts[:103]:
        services.subscribe(contact, newsletter, confirmed=True)
    services.unsubscribe(contacts[0], newsletter)
    with CaptureQueriesContext(connection) as queries:
        page = logged_in.get(f"/contacts/?list={newsletter.uuid.hex}").context["page"]
    assert page.total == 102
    # The list's counters, not its subscriptions, give the number.
    counted = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert not [sql for sql in counted if "audience_subscription" in sql], counted
    assert logged_in.get("/contacts/").context["page"].total == 120
    # guest0000 to guest0099
    assert logged_in.get("/contacts/?q=guest00").context["page"].total == 100
    page = logged_in.get(f"/contacts/?list={newsletter.uuid.hex}&page=3").context["page"]
    assert (page.number, len(page.contacts), page.pages) == (3, 2, 3)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=ada", ["ada@example.org"]),
        ("q=LOVELACE", ["ada@example.org"]),
        ("q=city%3DGhent", ["bob@example.org"]),
        ("q=attributes__city%3D%22Ghent%22", ["bob@example.org"]),
        ("q=age%3D42", ["ada@example.org"]),
        ("status=blocklisted", ["eve@example.org"]),
        ("tag=vip", ["ada@example.org", "bob@example.org"]),
    ],
)
def test_search_by_email_name_attribute_status_and_tag(logged_in, account, query, expected):
    services.add_contact(
        account, "ada@example.org", name="Ada Lovelace", attributes={"age": 42}, tags=["vip"]
    )
    services.add_contact(account, "bob@example.org", attributes={"city": "Ghent"}, tags=["vip"])
    services.blocklist(services.add_contact(account, "eve@example.org"))
    found = logged_in.get(f"/contacts/?{query}").context["page"].contacts
    assert sorted(c.email for c in found) == expected


def test_filter_by_list_shows_its_subscribers_not_those_who_left(logged_in, account, newsletter):
    a, b, _ = make(account, 3)
    services.subscribe(a, newsletter, confirmed=True)
    services.subscribe(b, newsletter, confirmed=True)
    services.unsubscribe(b, newsletter)
    found = logged_in.get(f"/contacts/?list={newsletter.uuid.hex}").context["page"].contacts
    assert [c.email for c in found] == [a.email]


def test_a_bad_search_says_why(logged_in, account, other_customer):
    theirs = mailing_lists.save_list(other_customer.account, name="Theirs")
    for query, message in [
        ("q=no%22good%3Dx", "is not an attribute name"),
        ("status=gone", "is not a contact status"),
        (f"list={theirs.uuid.hex}", "That list does not exist"),
    ]:
        response = logged_in.get(f"/contacts/?{query}")
        assert message in response.content.decode(), query


def test_the_customer_edits_name_tags_status_and_typed_attributes(logged_in, account):
    contact = services.add_contact(account, "ada@example.org")
    response = logged_in.post(
        f"/contacts/{contact.uuid}/",
        {
            "name": "Ada King",
            "tags": "vip, speaker ,",
            "status": "active",
            "attr_key": ["city", "age", "member", "joined", ""],
            "attr_type": ["text", "number", "boolean", "date", "text"],
            "attr_value": ["Ghent", "42", "yes", "2024-02-29", "ignored"],
        },
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.name == "Ada King"
    assert contact.tags == ["speaker", "vip"]
    assert contact.attributes == {
        "city": "Ghent",
        "age": 42,
        "member": True,
        "joined": "2024-02-29",
    }
    # Stored with JSON types: the database compares the number as a number.
    assert Contact.objects.filter(attributes__age__gt=41, pk=contact.pk).exists()
    page = logged_in.get(f"/contacts/{contact.uuid}/").content.decode()
    assert 'value="2024-02-29"' in page and "Ada King" in page


@pytest.mark.parametrize(
    ("key", "kind", "value", "message"),
    [
        ("age", "number", "forty", "is not a number"),
        ("joined", "date", "2024-02-30", "is not a date"),
        ("member", "boolean", "maybe", "is not yes or no"),
        ('bad"key', "text", "x", "is not an attribute name"),
    ],
)
def test_a_wrong_attribute_is_refused_and_nothing_is_saved(
    logged_in, account, key, kind, value, message
):
    contact = services.add_contact(account, "ada@example.org", name="Ada")
    response = logged_in.post(
        f"/contacts/{contact.uuid}/",
        {
            "name": "Changed",
            "tags": "",
            "attr_key": [key],
            "attr_type": [kind],
            "attr_value": [value],
        },
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    contact.refresh_from_db()
    assert contact.name == "Ada" and contact.attributes == {}


def test_the_customer_cannot_undo_an_unsubscription(logged_in, account, newsletter):
    contact = services.add_contact(account, "ada@example.org", lists=[newsletter])
    services.unsubscribe(contact)
    response = logged_in.post(
        f"/contacts/{contact.uuid}/", {"name": "", "tags": "", "status": "active"}
    )
    assert response.status_code == 400
    assert "only the contact can undo that" in response.content.decode()
    contact.refresh_from_db()
    assert contact.status == Contact.Status.UNSUBSCRIBED


def test_the_contact_page_shows_subscriptions_and_proofs(logged_in, account, newsletter):
    contact = services.add_contact(
        account,
        "ada@example.org",
        lists=[newsletter],
        proof={"method": ConsentProof.Method.MANUAL, "note": "paper form at the fair"},
    )
    page = logged_in.get(f"/contacts/{contact.uuid}/").content.decode()
    assert "Newsletter" in page and "paper form at the fair" in page


def test_adding_a_contact_by_hand_stores_the_basis_and_the_proof(logged_in, account, newsletter):
    response = logged_in.post(
        "/contacts/new/",
        {
            "email": "New@Example.org",
            "name": "New Person",
            "lists": [newsletter.pk],
            "legal_basis": "contract",
            "basis_at": "2024-05-01",
            "note": "customer since 2024",
        },
    )
    assert response.status_code == 302
    contact = Contact.objects.get(account=account, email="new@example.org")
    assert contact.legal_basis == "contract" and contact.basis_at.date().isoformat() == "2024-05-01"
    proof = contact.consent_proofs.get()
    assert proof.note == "customer since 2024" and proof.method == "manual"
    assert Subscription.objects.get(contact=contact).status == "confirmed"


@pytest.mark.parametrize("email", ["not-an-address", "a@b", "two@@example.org"])
def test_adding_an_invalid_address_is_refused(logged_in, account, email):
    response = logged_in.post("/contacts/new/", {"email": email, "legal_basis": "consent"})
    assert response.status_code == 200
    assert "not a valid email address" in response.content.decode()
    assert not Contact.objects.filter(account=account).exists()


def test_an_erased_address_cannot_be_added_back_by_hand(logged_in, account):
    services.erase_contact(services.add_contact(account, "gone@example.org"))
    response = logged_in.post(
        "/contacts/new/", {"email": "gone@example.org", "legal_basis": "consent"}
    )
    assert "needs a new consent" in response.content.decode()
    assert not Contact.objects.filter(account=account).exists()


@pytest.mark.promise("P13")
def test_deleting_a_contact_erases_it_and_keeps_only_a_hash(logged_in, account, newsletter):
    contact = services.add_contact(account, "ada@example.org", lists=[newsletter])
    assert logged_in.get(f"/contacts/{contact.uuid}/delete/").status_code == 200
    assert logged_in.post(f"/contacts/{contact.uuid}/delete/").status_code == 302
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert not Subscription.objects.filter(contact_id=contact.pk).exists()
    assert services.is_suppressed(account, "ada@example.org")


def test_blocklisting_a_contact_stops_their_mail(logged_in, account, newsletter):
    contact = services.add_contact(account, "ada@example.org", lists=[newsletter])
    logged_in.post(f"/contacts/{contact.uuid}/blocklist/")
    contact.refresh_from_db()
    assert contact.status == Contact.Status.BLOCKLISTED
    assert not mailability.recipients(account, [newsletter.pk]).exists()


def test_adding_to_and_taking_off_a_list_from_the_contact_page(logged_in, account, newsletter):
    contact = services.add_contact(account, "ada@example.org")
    logged_in.post(f"/contacts/{contact.uuid}/lists/", {"action": "add", "list": newsletter.uuid})
    assert Subscription.objects.get(contact=contact).status == "confirmed"
    logged_in.post(
        f"/contacts/{contact.uuid}/lists/", {"action": "remove", "list": newsletter.uuid}
    )
    assert not Subscription.objects.filter(contact=contact).exists()


def test_a_contact_who_left_a_list_is_not_put_back_by_the_customer(logged_in, account, newsletter):
    contact = services.add_contact(account, "ada@example.org", lists=[newsletter])
    services.unsubscribe(contact, newsletter)
    response = logged_in.post(
        f"/contacts/{contact.uuid}/lists/", {"action": "add", "list": newsletter.uuid}, follow=True
    )
    assert "only a new consent" in response.content.decode()
    assert Subscription.objects.get(contact=contact).status == "unsubscribed"


@pytest.mark.parametrize("suffix", ["", "delete/", "blocklist/", "lists/"])
def test_another_accounts_contact_is_not_found_and_not_changed(
    logged_in, account, other_customer, newsletter, suffix
):
    theirs = services.add_contact(other_customer.account, "their@example.net", name="Theirs")
    for method in ("get", "post"):
        response = getattr(logged_in, method)(
            f"/contacts/{theirs.uuid}/{suffix}",
            {"name": "x", "status": "blocklisted", "action": "add", "list": newsletter.uuid},
        )
        assert response.status_code in (404, 405)
    theirs.refresh_from_db()
    assert (theirs.name, theirs.status) == ("Theirs", "active")
    assert not Subscription.objects.filter(contact=theirs).exists()


# --- bulk actions ------------------------------------------------------------------


@pytest.fixture
def bulk(logged_in, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """Post a bulk action; the job a whole-result action queues after commit runs too."""

    def post(client, action, *, contacts=(), scope="selected", **extra):  # type: ignore[no-untyped-def]
        data = {"action": action, "scope": scope, "contact": [str(c.uuid) for c in contacts]}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/contacts/bulk/", data | extra, follow=True)

    return post


def test_bulk_tag_on_a_selection(logged_in, bulk, account):
    a, b, _ = make(account, 3)
    bulk(logged_in, "tag", contacts=[a, b], tag="vip")
    assert set(Contact.objects.filter(tags__has_element="vip")) == {a, b}
    bulk(logged_in, "tag", contacts=[a], tag="vip")  # twice: no duplicate
    a.refresh_from_db()
    assert a.tags == ["vip"]


def test_bulk_on_a_whole_search_result_is_one_statement(logged_in, bulk, account, newsletter):
    make(account, 30, prefix="ghent", attributes={"city": "Ghent"})
    make(account, 5, prefix="paris", attributes={"city": "Paris"})
    with CaptureQueriesContext(connection) as queries:
        bulk(logged_in, "add_to_list", scope="all", list=newsletter.uuid.hex, s_q="city=Ghent")
    inserts = [q for q in queries if q["sql"].startswith("INSERT INTO audience_subscription")]
    assert len(inserts) == 1
    assert Subscription.objects.filter(mailing_list=newsletter).count() == 30
    assert not Subscription.objects.filter(contact__email__startswith="paris").exists()
    # Each new subscription has its proof row, on the contact's own legal basis.
    assert ConsentProof.objects.filter(mailing_list=newsletter).count() == 30


def test_bulk_add_to_list_leaves_those_who_left_alone(logged_in, bulk, account, newsletter):
    stays, left_list, left_all = make(account, 3)
    services.subscribe(left_list, newsletter, confirmed=True)
    services.unsubscribe(left_list, newsletter)
    services.unsubscribe(left_all)
    bulk(logged_in, "add_to_list", scope="all", list=newsletter.uuid.hex)
    statuses = dict(
        Subscription.objects.filter(mailing_list=newsletter).values_list("contact__email", "status")
    )
    assert statuses == {stays.email: "confirmed", left_list.email: "unsubscribed"}


def test_bulk_remove_from_list_keeps_a_contacts_own_unsubscription(
    logged_in, bulk, account, newsletter
):
    _, b = make(account, 2, lists=[newsletter])
    services.unsubscribe(b, newsletter)
    bulk(logged_in, "remove_from_list", scope="all", list=newsletter.uuid.hex)
    assert list(Subscription.objects.values_list("contact__email", "status")) == [
        (b.email, "unsubscribed")
    ]


def test_bulk_blocklist_and_delete_a_search_result(logged_in, bulk, account):
    keep = make(account, 2, prefix="keep")
    make(account, 4, prefix="spam")
    bulk(logged_in, "blocklist", scope="all", s_q="spam")
    assert Contact.objects.filter(status="blocklisted").count() == 4
    bulk(logged_in, "delete", scope="all", s_status="blocklisted")
    assert list(Contact.objects.filter(account=account).order_by("email")) == keep
    assert services.is_suppressed(account, "spam0001@example.org")


def test_bulk_with_a_bad_argument_changes_nothing(logged_in, bulk, account, other_customer):
    a = make(account, 1)[0]
    theirs = mailing_lists.save_list(other_customer.account, name="Theirs")
    page = bulk(logged_in, "add_to_list", contacts=[a], list=theirs.uuid.hex).content.decode()
    assert "That list does not exist" in page
    page = bulk(logged_in, "tag", scope="all", tag="a,b").content.decode()
    assert "is not a tag" in page
    page = bulk(logged_in, "drop_table", scope="all").content.decode()
    assert "Choose an action" in page
    assert not Subscription.objects.exists()
    a.refresh_from_db()
    assert a.tags == []


def test_bulk_never_touches_another_accounts_contacts(logged_in, bulk, account, other_customer):
    mine = make(account, 1)[0]
    theirs = services.add_contact(other_customer.account, "their@example.net")
    bulk(logged_in, "delete", contacts=[mine, theirs])
    bulk(logged_in, "blocklist", scope="all")
    assert not Contact.objects.filter(pk=mine.pk).exists()
    theirs.refresh_from_db()
    assert theirs.status == "active"


@pytest.mark.parametrize("n", [0, 3, PAGE_SIZE, PAGE_SIZE + 1])
def test_a_first_page_that_holds_every_match_is_the_count(account, n):
    """`page_of` (the segment editor's first page, the benchmark's) counts no more than
    it must."""
    Contact.objects.bulk_create(
        Contact(account=account, email=f"q{i:03d}@example.org") for i in range(n)
    )
    with CaptureQueriesContext(connection) as queries:
        page = page_of(ContactSearch(q="example").contacts(account), account)
    assert page.total == f"{n:,}"
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    # Only a full page leaves the count unknown.
    assert bool(counts) == (n > PAGE_SIZE), counts


@pytest.mark.parametrize(
    "search",
    [
        {},  # everyone
        {"q": "old"},  # only among the oldest
        {"q": "even"},  # every other contact
        {"q": "new"},  # only among the newest
        {"q": "nobody"},
    ],
)
@pytest.mark.parametrize("window", [1, 7, 30, 1000])
def test_pages_are_the_same_whichever_contacts_are_looked_among_first(account, search, window):
    """A page looks among the newest contacts first and then sorts the older matches
    (`_newest`); whatever the window, every page holds exactly the matches a plain
    "newest first" query gives, in the same order, and the cursors go on from them."""

    names = ["old" if i < 8 else "new" if i > 52 else "" for i in range(60)]
    Contact.objects.bulk_create(
        Contact(
            account=account,
            email=f"c{i:03d}@example.org",
            name=f"{names[i]} {'even' if i % 2 == 0 else 'odd'}",
        )
        for i in range(60)
    )
    qs = ContactSearch.from_dict(search).contacts(account)
    expected = list(qs.order_by("-pk").values_list("pk", flat=True))
    seen: list[int] = []
    after = None
    while True:
        page = page_of(qs, account, after=after, size=7, window=window)
        seen += [c.pk for c in page.contacts]
        if page.older is None:
            break
        after = page.older
    assert seen == expected


def test_another_accounts_newer_contacts_do_not_slow_this_accounts_page(account, other_customer):
    """The window of newest contacts is the account's own: with one made of the whole
    table, another account's import would leave none of this account's contacts in it,
    and every first page would find and sort all of them (a million, at scale) instead of
    reading the newest few."""

    Contact.objects.bulk_create(
        Contact(account=account, email=f"mine{i:02d}@example.org") for i in range(20)
    )
    Contact.objects.bulk_create(
        Contact(account=other_customer.account, email=f"theirs{i:02d}@example.org")
        for i in range(20)
    )
    qs = ContactSearch().contacts(account)
    with CaptureQueriesContext(connection) as queries:
        page = page_of(qs, account, size=7, window=10)
    assert [c.email for c in page.contacts] == [
        f"mine{i:02d}@example.org" for i in range(19, 12, -1)
    ]
    sorted_by_filter = [q["sql"] for q in queries if "+ 0" in q["sql"]]
    assert sorted_by_filter == [], sorted_by_filter
