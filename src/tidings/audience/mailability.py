"""Who may be mailed, and for what: the one rule (P5, P18, P19, P21, P26).

Every message to a contact has a purpose (`core.mail.Purpose`):

- **marketing** (campaigns): the account is open and not restricted; the contact is
  active (neither waiting for confirmation, unsubscribed, bounced, complained nor
  blocklisted), not restricted, has no open objection, is confirmed on one of the
  campaign's lists (on some list, for a campaign to segments), and the address is not on
  the account's suppression list, whatever the reason it is there;
- **service** (mail the contact asked for: a transactional message, a fresh preference
  link): the account is open and not restricted; the contact, if the address is one,
  is not restricted, bounced, complained or blocklisted; the address is not suppressed
  as erased, bounced or complained (an unsubscription ends marketing, not service);
- **notice** (what the law asks the customer to send: an answer to a rights request,
  a breach notice, the notice before a restriction is lifted, the double opt-in mail
  the person has just asked for): sent to the unsubscribed and the restricted too, and
  whatever the account's state, but never to a hard-bounced address.

The rule is written once per form a caller needs, and a property test
(tests/audience/test_mailability.py, on PostgreSQL and SQLite) proves the three equal
over every combination of facts:

- `allows(purpose, facts)`: a check of values in memory;
- `contacts_q(purpose, lists)`: a filter on `Contact`, for sets (a campaign's
  recipients, `recipients`);
- `sql(purpose, lists)`: a boolean SQL expression over a contact row `c`, for the
  sending engine's hot path (one statement per claimed chunk).

What the entry paths need (a contact who opted out comes back only with a new, proven
consent) is here as well: `OPTED_OUT` and `is_suppressed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.db import connections
from django.db.models import Exists, OuterRef, Q, QuerySet

from tidings.accounts.models import Account
from tidings.audience.models import (
    Contact,
    ContactRequest,
    MailingList,
    Subscription,
    SuppressedContact,
)
from tidings.core.digests import email_digest
from tidings.core.mail import Purpose

__all__ = [
    "ANY_LIST",
    "OPTED_OUT",
    "Facts",
    "Lists",
    "Purpose",
    "allows",
    "contacts_q",
    "facts_for",
    "is_suppressed",
    "may_receive",
    "recipients",
    "sql",
]

# Statuses nothing but a new, proven consent may lift (never an import or an edit).
OPTED_OUT = frozenset(
    {Contact.Status.UNSUBSCRIBED, Contact.Status.COMPLAINED, Contact.Status.BOUNCED}
)
# Contacts in these states get no service mail: they made the address unmailable, or
# the customer did.
NO_SERVICE = frozenset(
    {Contact.Status.BOUNCED, Contact.Status.COMPLAINED, Contact.Status.BLOCKLISTED}
)
_SUPPRESSED_FOR_SERVICE = (
    SuppressedContact.Reason.ERASED,
    SuppressedContact.Reason.BOUNCED,
    SuppressedContact.Reason.COMPLAINED,
)

# A campaign to segments goes to contacts confirmed on any of the account's lists.
ANY_LIST: Literal["any"] = "any"
Lists = Sequence[int] | Literal["any"] | None


@dataclass(frozen=True)
class Facts:
    """What the rule looks at, for one address of one account. `contact_status` is
    None when the address is no contact of the account; `subscribed` says whether the
    contact is confirmed on one of the lists in question; `suppressed` is the reason the
    address is on the account's suppression list, if it is."""

    account_status: str
    account_restricted: bool = False
    contact_status: str | None = None
    contact_restricted: bool = False
    objected: bool = False
    subscribed: bool = False
    suppressed: str | None = None


def allows(purpose: str, facts: Facts) -> bool:
    """The rule, on values."""
    if purpose == Purpose.NOTICE:
        return (
            facts.contact_status != Contact.Status.BOUNCED
            and facts.suppressed != SuppressedContact.Reason.BOUNCED
        )
    account_open = facts.account_status == Account.Status.ACTIVE and not facts.account_restricted
    if purpose == Purpose.SERVICE:
        return (
            account_open
            and not facts.contact_restricted
            and facts.contact_status not in NO_SERVICE
            and facts.suppressed not in _SUPPRESSED_FOR_SERVICE
        )
    if purpose == Purpose.MARKETING:
        return (
            account_open
            and facts.contact_status == Contact.Status.ACTIVE
            and not facts.contact_restricted
            and not facts.objected
            and facts.subscribed
            and facts.suppressed is None
        )
    raise ValueError(f"unknown purpose {purpose!r}")


# --- as a filter on Contact --------------------------------------------------------------


def _suppressed(reasons: Sequence[str] | None = None) -> Exists:
    rows = SuppressedContact.objects.filter(account=OuterRef("account"), digest=OuterRef("digest"))
    return Exists(rows.filter(reason__in=reasons) if reasons is not None else rows)


def _subscribed(lists: Lists) -> Exists:
    rows = Subscription.objects.filter(contact=OuterRef("pk"), status=Subscription.Status.CONFIRMED)
    if lists != ANY_LIST:
        rows = rows.filter(mailing_list__in=list(lists or []))
    return Exists(rows)


def _objected() -> Exists:
    return Exists(
        ContactRequest.objects.filter(
            contact=OuterRef("pk"),
            kind=ContactRequest.Kind.OBJECTION,
            status=ContactRequest.Status.OPEN,
        )
    )


def contacts_q(purpose: str, lists: Lists = None) -> Q:
    """The rule as a filter on Contact; `lists` (list ids, or ANY_LIST) for marketing."""
    if purpose == Purpose.NOTICE:
        return ~Q(status=Contact.Status.BOUNCED) & ~Q(
            _suppressed([SuppressedContact.Reason.BOUNCED])
        )
    account_open = Q(account__status=Account.Status.ACTIVE, account__restricted_at__isnull=True)
    if purpose == Purpose.SERVICE:
        return (
            account_open
            & Q(restricted_at__isnull=True)
            & ~Q(status__in=NO_SERVICE)
            & ~Q(_suppressed(_SUPPRESSED_FOR_SERVICE))
        )
    if purpose == Purpose.MARKETING:
        return (
            account_open
            & Q(status=Contact.Status.ACTIVE, restricted_at__isnull=True)
            & ~Q(_objected())
            & Q(_subscribed(lists))
            & ~Q(_suppressed())
        )
    raise ValueError(f"unknown purpose {purpose!r}")


def recipients(account: Account, lists: Lists) -> QuerySet[Contact]:
    """The account's contacts a campaign to `lists` may go to right now."""
    if lists not in (ANY_LIST, None):
        owned = MailingList.objects.filter(account=account, pk__in=list(lists or []))
        lists = list(owned.values_list("pk", flat=True))
    return Contact.objects.filter(contacts_q(Purpose.MARKETING, lists), account=account)


# --- as SQL over a contact row `c` ---------------------------------------------------------


def sql(purpose: str, lists: Lists = None) -> tuple[str, list[Any]]:
    """The rule as a boolean SQL expression over the contact row aliased `c`, with its
    parameters: for statements written by hand on the hot path."""
    table = {
        "account": Account._meta.db_table,
        "suppressed": SuppressedContact._meta.db_table,
        "subscription": Subscription._meta.db_table,
        "request": ContactRequest._meta.db_table,
    }

    def suppressed(reasons: Sequence[str] | None) -> tuple[str, list[Any]]:
        where = " AND x.reason IN ({})".format(", ".join(["%s"] * len(reasons))) if reasons else ""
        return (
            f"EXISTS (SELECT 1 FROM {table['suppressed']} x WHERE x.account_id = c.account_id "  # noqa: S608
            f"AND x.digest = c.digest{where})",
            list(reasons or []),
        )

    if purpose == Purpose.NOTICE:
        exists, params = suppressed([SuppressedContact.Reason.BOUNCED])
        return f"(c.status <> %s AND NOT {exists})", [Contact.Status.BOUNCED, *params]
    account_open = (
        f"EXISTS (SELECT 1 FROM {table['account']} a WHERE a.id = c.account_id "  # noqa: S608
        "AND a.status = %s AND a.restricted_at IS NULL)"
    )
    if purpose == Purpose.SERVICE:
        exists, params = suppressed(list(_SUPPRESSED_FOR_SERVICE))
        states = ", ".join(["%s"] * len(NO_SERVICE))
        return (
            f"({account_open} AND c.restricted_at IS NULL AND c.status NOT IN ({states}) "
            f"AND NOT {exists})",
            [Account.Status.ACTIVE, *sorted(NO_SERVICE), *params],
        )
    if purpose == Purpose.MARKETING:
        on_lists, list_params = "", []
        if lists != ANY_LIST:
            ids = list(lists or [])
            on_lists = " AND s.mailing_list_id IN ({})".format(
                ", ".join(["%s"] * len(ids)) or "NULL"
            )
            list_params = ids
        exists, params = suppressed(None)
        return (
            f"({account_open} AND c.status = %s AND c.restricted_at IS NULL "  # noqa: S608
            f"AND NOT EXISTS (SELECT 1 FROM {table['request']} r WHERE r.contact_id = c.id "
            "AND r.kind = %s AND r.status = %s) "
            f"AND EXISTS (SELECT 1 FROM {table['subscription']} s WHERE s.contact_id = c.id "
            f"AND s.status = %s{on_lists}) AND NOT {exists})",
            [
                Account.Status.ACTIVE,
                Contact.Status.ACTIVE,
                ContactRequest.Kind.OBJECTION,
                ContactRequest.Status.OPEN,
                Subscription.Status.CONFIRMED,
                *list_params,
                *params,
            ],
        )
    raise ValueError(f"unknown purpose {purpose!r}")


def mailable_ids(purpose: str, contact_ids: Sequence[int], lists: Lists = None) -> set[int]:
    """Which of these contacts may get mail of `purpose` now: one statement, the SQL form."""
    if not contact_ids:
        return set()
    condition, params = sql(purpose, lists)
    marks = ", ".join(["%s"] * len(contact_ids))
    query = f"SELECT c.id FROM {Contact._meta.db_table} c WHERE c.id IN ({marks}) AND {condition}"  # noqa: S608
    with connections[Contact.objects.db].cursor() as cursor:
        cursor.execute(query, [*contact_ids, *params])
        return {row[0] for row in cursor.fetchall()}


# --- facts read for one address, for the check in memory ------------------------------------


def facts_for(account: Account, email: str, lists: Lists = None) -> Facts:
    """The facts of one address of `account`, read now."""
    digest = email_digest(email)
    contact = Contact.objects.filter(account=account, digest=digest).first()
    reason = (
        SuppressedContact.objects.filter(account=account, digest=digest)
        .values_list("reason", flat=True)
        .first()
    )
    account_row = Account.objects.values("status", "restricted_at").get(pk=account.pk)
    facts = Facts(
        account_status=account_row["status"],
        account_restricted=account_row["restricted_at"] is not None,
        suppressed=reason,
    )
    if contact is None:
        return facts
    subscriptions = Subscription.objects.filter(
        contact=contact, status=Subscription.Status.CONFIRMED
    )
    if lists != ANY_LIST:
        subscriptions = subscriptions.filter(mailing_list__in=list(lists or []))
    return Facts(
        account_status=facts.account_status,
        account_restricted=facts.account_restricted,
        contact_status=contact.status,
        contact_restricted=contact.restricted_at is not None,
        objected=ContactRequest.objects.filter(
            contact=contact, kind=ContactRequest.Kind.OBJECTION, status=ContactRequest.Status.OPEN
        ).exists(),
        subscribed=subscriptions.exists(),
        suppressed=reason,
    )


def may_receive(account: Account, email: str, purpose: str, lists: Lists = None) -> bool:
    """Whether `email` may get mail of `purpose` from `account` right now."""
    return allows(purpose, facts_for(account, email, lists))


def is_suppressed(account: Account, email: str) -> bool:
    """Whether the address is on the account's suppression list (for any reason)."""
    return SuppressedContact.objects.filter(account=account, digest=email_digest(email)).exists()
