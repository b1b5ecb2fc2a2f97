"""The customer's lists and the subscription forms that offer them: written here, checked
here (names, visibility, opt-in, public lists only on a form, one account's lists only)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account
from tidings.audience.models import (
    MailingList,
    SubscriptionForm,
)
from tidings.audience.services import AudienceError, check_same_account


def save_list(
    account: Account,
    *,
    mailing_list: MailingList | None = None,
    name: str,
    description: str = "",
    visibility: str = MailingList.Visibility.PRIVATE,
    optin: str = MailingList.OptIn.DOUBLE,
) -> MailingList:
    """Create a list, or change `mailing_list`; names are unique within the account."""
    name = name.strip()
    if not name or len(name) > 200:
        raise AudienceError(_("A list needs a name of 1 to 200 characters."))
    if visibility not in MailingList.Visibility.values:
        raise AudienceError(
            _("Visibility must be one of %(join)s.") % {"join": ", ".join(MailingList.Visibility)}
        )
    if optin not in MailingList.OptIn.values:
        raise AudienceError(
            _("Opt-in must be one of %(join)s.") % {"join": ", ".join(MailingList.OptIn)}
        )
    taken = MailingList.objects.filter(account=account, name__iexact=name)
    if mailing_list is not None:
        check_same_account(account, mailing_list)
        taken = taken.exclude(pk=mailing_list.pk)
    if taken.exists():
        raise AudienceError(_("You already have a list called “%(name)s”.") % {"name": name})
    target = mailing_list or MailingList(account=account)
    target.name = name
    target.description = description.strip()[:5000]
    target.visibility = visibility
    target.optin = optin
    target.save()
    if visibility == MailingList.Visibility.PRIVATE:
        # A private list is never offered on a form.
        for form in SubscriptionForm.objects.filter(lists=target):
            form.lists.remove(target)
    return target


def delete_list(mailing_list: MailingList) -> None:
    """Delete a list and its subscriptions; the contacts stay in the audience."""
    mailing_list.delete()


THANK_YOU_URL_MAX = 500
_web_address = URLValidator(schemes=["http", "https"])


def check_thank_you_url(url: str) -> str:
    """The thank-you address as saved: empty, or a plain http(s) web address (no user
    name or password in it, no spaces or backslashes). The hosted form redirects only to
    an address that passes this, so it is never a redirect to whatever a request says."""
    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    try:
        if len(url) > THANK_YOU_URL_MAX or "@" in parts.netloc or "\\" in url:
            raise ValidationError("unsafe")
        _web_address(url)
    except ValidationError:
        raise AudienceError(
            _(
                "The thank-you address must be a web address that starts with https:// or "
                "http://, names a site, and has at most %(max)s characters."
            )
            % {"max": THANK_YOU_URL_MAX}
        ) from None
    return url


def save_form(
    account: Account,
    *,
    form: SubscriptionForm | None = None,
    name: str,
    lists: Iterable[MailingList],
    consent_text: str,
    thank_you_url: str = "",
) -> SubscriptionForm:
    """Create or change a subscription form. A changed consent text is a new version:
    proofs keep the exact text and version each person agreed to (P22)."""
    name, consent_text = name.strip(), consent_text.strip()
    lists = list(lists)
    if not name or len(name) > 200:
        raise AudienceError(_("A form needs a name of 1 to 200 characters."))
    if not consent_text:
        raise AudienceError(_("Say what people agree to: the consent text is required."))
    if not lists:
        raise AudienceError(_("Choose at least one public list for the form."))
    for mailing_list in lists:
        check_same_account(account, mailing_list)
        if mailing_list.visibility != MailingList.Visibility.PUBLIC:
            raise AudienceError(
                _("“%(name)s” is private: forms offer public lists.") % {"name": mailing_list.name}
            )
    thank_you_url = check_thank_you_url(thank_you_url)
    with transaction.atomic():
        if form is None:
            form = SubscriptionForm(account=account, consent_text=consent_text)
        elif form.account_id != account.pk:
            raise AudienceError(_("That form belongs to another account."))
        elif form.consent_text != consent_text:
            form.consent_version += 1
        form.name = name
        form.consent_text = consent_text
        form.thank_you_url = thank_you_url
        form.save()
        form.lists.set(lists)
    return form
