"""Which of the operator's customers' users may get which of Tidings's own mail (P5,
P18, P19): the users' side of the one mailability rule (contacts have theirs in
`audience.mailability`).

- marketing (product updates): a confirmed, active user of an open, unrestricted
  account who left "product-update emails" on in My Account;
- service (mail the user asked for): an active user whose account, if any, is open and
  not restricted;
- notice (what the law and the person's own safety ask for: a notice of a change to
  their data (P19), of erasure, of a restriction to be lifted, a password reset): every
  user, whatever the state of their account.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from tidings.accounts.models import Account, User
from tidings.core.mail import Purpose


def users_q(purpose: str) -> Q:
    """The rule as a filter on User."""
    if purpose == Purpose.NOTICE:
        return Q()
    open_account = Q(account__status=Account.Status.ACTIVE, account__restricted_at__isnull=True)
    if purpose == Purpose.SERVICE:
        return Q(is_active=True) & (Q(account__isnull=True) | open_account)
    if purpose == Purpose.MARKETING:
        return (
            Q(account__isnull=False, is_active=True, email_confirmed_at__isnull=False)
            & open_account
            & Q(allow_product_updates=True)
        )
    raise ValueError(f"unknown purpose {purpose!r}")


def user_may_receive(user_id: int, purpose: str) -> bool:
    return User.objects.filter(users_q(purpose), pk=user_id).exists()


def account_users(account_id: int, purpose: str) -> QuerySet[User]:
    """The users of one account the rule lets get mail of `purpose`."""
    return User.objects.filter(users_q(purpose), account_id=account_id).order_by("pk")
