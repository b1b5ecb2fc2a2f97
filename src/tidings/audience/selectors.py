"""Reads of the audience: contact search, keyset pages, counts. Every one starts from
the account (DESIGN principle 5) and stays fast at a million contacts: pages by id,
never OFFSET, and no count of the whole table on every page."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from django.db.models import BigIntegerField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account
from tidings.audience import counters
from tidings.audience.lookups import ATTRIBUTE_KEY
from tidings.audience.models import ConsentProof, Contact, MailingList, Subscription

PAGE_SIZE = 50
# Counting stops here: "1-50 of 1,000+" needs no count of a million rows.
COUNT_UP_TO = 1000
# The newest contacts a page looks among first (see _newest).
NEWEST_WINDOW = 10_000


def typed_alternatives(text: str) -> list[Any]:
    """A value typed as text, and what it may be stored as: "3" may be the number 3,
    "true" the boolean. Attribute conditions match any of them."""
    values: list[Any] = [text]
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        values.append(lowered == "true")
    try:
        number = float(text)
    except ValueError:
        return values
    if number.is_integer() and "." not in text and "e" not in lowered:
        values.append(int(number))
    elif number == number and abs(number) != float("inf"):
        values.append(number)
    return values


def attribute_equals(key: str, value: Any) -> Q:
    """The attribute `key` has `value` (text also matches its number or true/false)."""
    alternatives = typed_alternatives(value) if isinstance(value, str) else [value]
    q = Q()
    for alternative in alternatives:
        q |= Q(attributes__holds={key: alternative})
    return q


class SearchError(ValueError):
    pass


def parse_attribute_query(text: str) -> tuple[str, str] | None:
    """`city=Ghent`, `attributes__city="Ghent"` or `attributes.city=Ghent` → (key, value)."""
    if "=" not in text:
        return None
    key, _sep, value = text.partition("=")
    key = key.strip()
    for prefix in ("attributes__", "attributes."):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    if not ATTRIBUTE_KEY.match(key) or "__" in key:
        raise SearchError(_("“%(key)s” is not an attribute name.") % {"key": key[:70]})
    return key, value


@dataclass(frozen=True)
class ContactSearch:
    """A search of the contacts page (and of a bulk action on its whole result)."""

    q: str = ""
    status: str = ""
    list: str = ""
    tag: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContactSearch:
        def get(name: str) -> str:
            value = data.get(name, "")
            return str(value).strip()[:300] if value is not None else ""

        return cls(q=get("q"), status=get("status"), list=get("list"), tag=get("tag"))

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}

    def querystring(self, **extra: Any) -> str:
        return urlencode({**self.as_dict(), **{k: v for k, v in extra.items() if v}})

    @property
    def is_empty(self) -> bool:
        return not self.as_dict()

    def contacts(self, account: Account) -> QuerySet[Contact]:
        """The account's contacts that match. Raises SearchError on a malformed search."""
        qs = Contact.objects.filter(account=account)
        if self.q:
            attribute = parse_attribute_query(self.q)
            if attribute is not None:
                qs = qs.filter(attribute_equals(*attribute))
            else:
                qs = qs.filter(Q(email__contains=self.q.lower()) | Q(name__icontains=self.q))
        if self.status:
            if self.status not in Contact.Status.values:
                raise SearchError(
                    _("“%(status)s” is not a contact status.") % {"status": self.status[:40]}
                )
            qs = qs.filter(status=self.status)
        if self.list:
            try:
                list_uuid = uuid.UUID(self.list)
            except ValueError:
                raise SearchError(_("That list does not exist.")) from None
            mailing_list = MailingList.objects.filter(account=account, uuid=list_uuid).first()
            if mailing_list is None:
                raise SearchError(_("That list does not exist."))
            qs = qs.filter(
                pk__in=Subscription.objects.filter(mailing_list=mailing_list)
                .exclude(status=Subscription.Status.UNSUBSCRIBED)
                .values("contact_id")
            )
        if self.tag:
            qs = qs.filter(tags__has_element=self.tag)
        return qs


@dataclass
class Page:
    contacts: list[Contact]
    first: int  # position of the first row, for "51-100"
    older: int | None  # cursor of the next page (older contacts)
    newer: int | None  # cursor of the previous page
    total: str  # "37", or "1,000+"

    @property
    def last(self) -> int:
        return self.first + len(self.contacts) - 1


def count_label(qs: QuerySet[Any], up_to: int = COUNT_UP_TO) -> str:
    """The number of rows, or "1,000+": counts at most `up_to` + 1 rows."""
    found = qs.order_by()[: up_to + 1].count()
    return f"{up_to:,}+" if found > up_to else f"{found:,}"


def _newest(
    qs: QuerySet[Contact], account: Account, limit: int, *, below: int | None, window: int
) -> list[Contact]:
    """The `limit` newest rows of `qs`, a query on `account`'s contacts (highest ids
    first), older than `below` if given.

    Asked for in one query, PostgreSQL walks the id index from the newest contact and
    checks each one, expecting the matches spread evenly over the ages. When they are
    not (a part of a name shared by contacts imported together, a list whose members all
    came long ago) it reads most of a million contacts one by one before the first
    match. So the account's newest `window` contacts are looked among first; only if
    they hold too few matches are the older ones found by the filter itself and sorted,
    which costs what finding them costs. (The account's own: another account's import
    must not push all of this one's contacts out of the window.)"""
    newest = Contact.objects.filter(account=account).order_by("-pk").values_list("pk", flat=True)
    if below is not None:
        qs = qs.filter(pk__lt=below)
        newest = newest.filter(pk__lt=below)
    edge = list(newest[window - 1 : window])
    if not edge:
        return list(qs.order_by("-pk")[:limit])
    rows = list(qs.filter(pk__gte=edge[0]).order_by("-pk")[:limit])
    if len(rows) < limit:
        # "id + 0" is not the id index's order: the planner finds the matches first.
        by_id = ExpressionWrapper(F("pk") + 0, output_field=BigIntegerField())
        rows += qs.filter(pk__lt=edge[0]).order_by(by_id.desc())[: limit - len(rows)]
    return rows


def page_of(
    qs: QuerySet[Contact],
    account: Account,
    *,
    after: int | None = None,
    before: int | None = None,
    first: int = 1,
    size: int = PAGE_SIZE,
    window: int = NEWEST_WINDOW,
) -> Page:
    """One page of `qs`, a query on `account`'s contacts, newest first, by keyset on
    the id."""
    total = ""
    if before is not None:
        rows = list(qs.filter(pk__gt=before).order_by("pk")[: size + 1])
        more_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        older = rows[-1].pk if rows else None
        newer = rows[0].pk if rows and more_newer else None
        first = max(1, first)
    else:
        rows = _newest(qs, account, size + 1, below=after, window=window)
        older = rows[size - 1].pk if len(rows) > size else None
        rows = rows[:size]
        newer = rows[0].pk if rows and after is not None else None
        if after is None and older is None:
            # The first page holds every match: its length is the count. A search that
            # reads every contact (a part of a name) then reads them once, not twice.
            total = f"{len(rows):,}"
    return Page(rows, first, older, newer, total or count_label(qs))


# The contacts table's sortable columns: the name in the address -> the order. Every
# order ends with the id, so pages never overlap or skip a contact.
SORTS: dict[str, tuple[str, ...]] = {
    "added": ("pk",),
    "email": ("email", "pk"),
    "name": ("name", "pk"),
    "status": ("status", "pk"),
}
DEFAULT_SORT = "-added"
# Page numbers shown around the current page, besides the first and the last.
PAGES_AROUND = 2


def sort_order(sort: str) -> tuple[str, tuple[str, ...]]:
    """The sort asked for ("email", "-name", …; anything else: newest first) and its
    ORDER BY."""
    column = sort.removeprefix("-")
    if column not in SORTS:
        sort, column = DEFAULT_SORT, DEFAULT_SORT.removeprefix("-")
    descending = sort.startswith("-")
    return sort, tuple(("-" + f) if descending else f for f in SORTS[column])


@dataclass
class NumberedPage:
    """One page of the contacts table, sorted, with its number among all the pages."""

    contacts: list[Contact]
    number: int
    total: int
    size: int
    sort: str

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        return (self.number - 1) * self.size + 1

    @property
    def last(self) -> int:
        return self.first + len(self.contacts) - 1

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None

    def numbers(self) -> list[int | None]:
        """The page numbers to link: the first, the last and those around this one;
        None where some are left out."""
        shown = {1, self.pages, *range(self.number - PAGES_AROUND, self.number + PAGES_AROUND + 1)}
        result: list[int | None] = []
        for n in sorted(x for x in shown if 1 <= x <= self.pages):
            if result and result[-1] is not None and n - result[-1] > 1:
                result.append(None)
            result.append(n)
        return result


def contacts_total(search: ContactSearch, account: Account, qs: QuerySet[Contact]) -> int:
    """The exact number of contacts a search finds. A whole list (the list filter alone)
    is read from the list's maintained counters (audience.counters: its subscriptions
    that are not unsubscribed), so a list of a million is counted without reading it;
    any other search is counted."""
    if search.list and search.as_dict().keys() == {"list"}:
        mailing_list = MailingList.objects.filter(
            account=account, uuid=uuid.UUID(search.list)
        ).values_list("pk", flat=True)
        list_id = mailing_list.first()
        if list_id is not None:
            counts = counters.sizes([list_id])[list_id]
            left = Subscription.Status.UNSUBSCRIBED
            return sum(n for status, n in counts.items() if status != left)
    return qs.order_by().count()


def sorted_page(
    qs: QuerySet[Contact],
    account: Account,
    *,
    total: int,
    sort: str = DEFAULT_SORT,
    number: int = 1,
    size: int = PAGE_SIZE,
) -> NumberedPage:
    """Page `number` of `qs` (a query on `account`'s contacts) in the order `sort`.
    Newest first, the first page is found as `page_of` finds it (the newest contacts
    looked among first); other pages by offset, each order backed by an index of the
    contact table (account and id, email, status) but the name's."""
    sort, order = sort_order(sort)
    pages = max(1, -(-total // size))
    number = min(max(1, number), pages)
    if sort == DEFAULT_SORT and number == 1:
        rows = _newest(qs, account, size, below=None, window=NEWEST_WINDOW)
    else:
        start = (number - 1) * size
        rows = list(qs.order_by(*order)[start : start + size])
    return NumberedPage(rows, number, total, size, sort)


def list_counts(account: Account) -> dict[int, dict[str, int]]:
    """For each list of the account, its subscriptions by status (maintained counters,
    audience.counters: no subscription is read)."""
    return counters.sizes(MailingList.objects.filter(account=account).values_list("pk", flat=True))


def consent_proofs_of(contact_ids: Sequence[int]) -> QuerySet[ConsentProof]:
    """The proofs of consent these contacts' data holds: their own, and the shared ones
    (an import's) that their subscriptions rest on."""
    shared = Subscription.objects.filter(contact_id__in=contact_ids, consent__isnull=False).values(
        "consent_id"
    )
    return ConsentProof.objects.filter(Q(contact_id__in=contact_ids) | Q(pk__in=shared))


def shared_proofs_left_by(contact_ids: Sequence[int]) -> QuerySet[ConsentProof]:
    """The shared proofs that only these contacts' subscriptions rest on: they go when
    these contacts go; one that another contact still relies on stays."""
    others = Subscription.objects.filter(consent=OuterRef("pk")).exclude(contact_id__in=contact_ids)
    return consent_proofs_of(contact_ids).filter(contact__isnull=True).exclude(Exists(others))
