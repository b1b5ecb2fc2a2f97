"""Every write of campaigns and layouts goes through here (DESIGN principle 2).

Functions take the account (or an object of it) first and refuse lists, segments and
layouts of any other account, so no caller can mix tenants by passing an id. Templates
are checked before anything is saved: a broken one changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from tidings.accounts.models import Account, User
from tidings.audience.models import Contact, MailingList, Segment
from tidings.audience.services import InvalidEmail, normalise_email
from tidings.campaigns import content, mjml, rendering
from tidings.campaigns.models import Campaign, Layout
from tidings.core import ratelimit

# Fields a customer edits on the campaign form.
CAMPAIGN_FIELDS = (
    "name",
    "subject",
    "from_name",
    "from_email",
    "reply_to",
    "preheader",
    "content_format",
    "body",
    "design",
    "layout",
    "track_opens",
    "track_clicks",
    "archived",
    "scheduled_at",
    "schedule_timezone",
)
# Real contacts a template is tried on at save time, besides the made-up sample.
CHECK_CONTACTS = 5
TEST_RECIPIENTS_MAX = 5
TEST_MESSAGES_PER_HOUR = getattr(settings, "TIDINGS_TEST_MESSAGES_PER_HOUR", 50)


class CampaignError(ValueError):
    """A change that cannot be made; the message says why, in the customer's words."""


class InvalidTemplates(CampaignError):
    """Templates that cannot be rendered, by field (`subject`, `body`, `layout`, ...)."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {text}" for field, text in problems.items()))


def _check_owned(account: Account, objects: Iterable[Any], what: str) -> None:
    for obj in objects:
        if obj is not None and obj.account_id != account.pk:
            raise CampaignError(
                _("That %(what)s does not belong to this account.") % {"what": what}
            )


def _check_templates(account: Account, values: dict[str, Any]) -> None:
    layout: Layout | None = values.get("layout")
    found = rendering.problems(
        subject=values["subject"],
        preheader=values["preheader"],
        body=values["body"],
        content_format=values["content_format"],
        layout=rendering.layout_html(values["content_format"], layout, account.language),
        contacts=Contact.objects.filter(account=account).order_by("pk")[:CHECK_CONTACTS],
        campaign={
            "name": values["name"],
            "from_name": values["from_name"],
            "from_email": values["from_email"],
        },
    )
    if found:
        raise InvalidTemplates(found)


def _prepared_values(account: Account, values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise TypeError(f"not campaign fields: {', '.join(sorted(unknown))}")
    _check_owned(account, [values.get("layout")], "layout")
    if values.get("content_format") == Campaign.Format.VISUAL:
        # The body is made here from the design's MJML, never taken from the client.
        design = values.get("design")
        source = design.get("mjml") if isinstance(design, dict) else None
        if not isinstance(source, str) or not source.strip():
            raise InvalidTemplates(
                {"body": str(_("A visual campaign needs its design: open the visual editor."))}
            )
        try:
            values["body"] = mjml.to_html(source)
        except rendering.TemplateError as error:
            raise InvalidTemplates({"body": str(error)}) from None
    if values.get("content_format") == Campaign.Format.RICHTEXT:
        try:
            values["body"] = content.sanitise(values.get("body", ""))
        except rendering.TemplateError as error:
            raise InvalidTemplates({"body": str(error)}) from None
    return values


def _save(
    campaign: Campaign,
    values: dict[str, Any],
    lists: Sequence[MailingList] | None,
    segments: Sequence[Segment] | None,
) -> Campaign:
    account = campaign.account
    _check_owned(account, lists or (), "list")
    _check_owned(account, segments or (), "segment")
    for field, value in values.items():
        setattr(campaign, field, value)
    _check_templates(account, {f: getattr(campaign, f) for f in CAMPAIGN_FIELDS})
    campaign.full_clean(exclude=["lists", "segments"])
    campaign.save()
    if lists is not None:
        campaign.lists.set(lists)
    if segments is not None:
        campaign.segments.set(segments)
    return campaign


def create_campaign(
    account: Account,
    *,
    by: User | None,
    lists: Sequence[MailingList] = (),
    segments: Sequence[Segment] = (),
    **values: Any,
) -> Campaign:
    """A new draft campaign of `account`."""
    values = _prepared_values(account, values)
    with transaction.atomic():
        return _save(Campaign(account=account), values, lists, segments)


def update_campaign(
    campaign: Campaign,
    *,
    by: User | None,
    lists: Sequence[MailingList] | None = None,
    segments: Sequence[Segment] | None = None,
    **values: Any,
) -> Campaign:
    """Change a campaign that has not started sending; refused once it has."""
    values = _prepared_values(campaign.account, values)
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if not locked.is_editable:
            raise CampaignError(
                _(
                    "This campaign is %(get_status_display)s: it can no longer be changed. "
                    "Duplicate it to make a new one."
                )
                % {"get_status_display": locked.get_status_display()}
            )
        if locked.status == Campaign.Status.SCHEDULED and values.get("scheduled_at", 1) is None:
            raise CampaignError(
                _(
                    "A scheduled campaign needs its send time; unschedule it first to keep it "
                    "as a draft."
                )
            )
        return _save(locked, values, lists, segments)


def duplicate_campaign(campaign: Campaign, *, by: User | None) -> Campaign:
    """A new draft with the same content, audience and settings, not scheduled."""
    with transaction.atomic():
        copy = Campaign.objects.create(
            account=campaign.account,
            name=f"Copy of {campaign.name}"[:200],
            **{
                f: getattr(campaign, f)
                for f in CAMPAIGN_FIELDS
                if f not in ("name", "scheduled_at", "archived")
            },
        )
        copy.lists.set(campaign.lists.all())
        copy.segments.set(campaign.segments.all())
    return copy


def delete_campaign(campaign: Campaign, *, by: User) -> None:
    """Delete a draft; a campaign that was scheduled or sent stays (its history counts)."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if not locked.is_deletable:
            raise CampaignError(
                _("Only drafts can be deleted; this campaign is %(get_status_display)s.")
                % {"get_status_display": locked.get_status_display()}
            )
        locked.delete()


# Layouts -------------------------------------------------------------------------------


def _check_layout(html: str) -> None:
    found = rendering.problems(
        subject="", preheader="", body="", content_format=Campaign.Format.HTML, layout=html
    )
    if "layout" in found:
        raise InvalidTemplates({"html": found["layout"]})


def create_layout(account: Account, *, name: str, html: str, by: User) -> Layout:
    _check_layout(html)
    layout = Layout(account=account, name=name.strip(), html=html)
    layout.full_clean()
    layout.save()
    return layout


def copy_default_layout(account: Account, *, by: User) -> Layout:
    """An editable copy of Tidings's default layout in `account`."""
    return create_layout(
        account,
        name="Default layout (copy)",
        html=rendering.default_layout_html(account.language),
        by=by,
    )


_IN_FLIGHT = (Campaign.Status.SENDING, Campaign.Status.PAUSED)


def update_layout(layout: Layout, *, name: str, html: str, by: User) -> Layout:
    """Change a layout; refused while a campaign using it is being sent, so that one
    campaign's messages all look the same."""
    _check_layout(html)
    with transaction.atomic():
        locked = Layout.objects.select_for_update().get(pk=layout.pk)
        if html != locked.html and locked.campaigns.filter(status__in=_IN_FLIGHT).exists():
            raise CampaignError(
                _("A campaign using this layout is being sent: change it when that is done.")
            )
        locked.name, locked.html = name.strip(), html
        locked.full_clean()
        locked.save()
    return locked


def delete_layout(layout: Layout, *, by: User) -> None:
    """Delete a layout no campaign beyond drafts uses (drafts fall back to the default)."""
    with transaction.atomic():
        locked = Layout.objects.select_for_update().get(pk=layout.pk)
        used = locked.campaigns.exclude(status=Campaign.Status.DRAFT).count()
        if used:
            raise CampaignError(
                ngettext(
                    "%(used)s campaign beyond drafts uses this layout; "
                    "it stays so that it keeps its look.",
                    "%(used)s campaigns beyond drafts use this layout; "
                    "it stays so that they keep their look.",
                    used,
                )
                % {"used": used}
            )
        locked.delete()


# Test messages -------------------------------------------------------------------------


def parse_test_recipients(raw: str) -> list[str]:
    """The addresses of a test send: one to five, separated by commas, spaces or lines."""
    parts = [p for p in raw.replace(",", " ").replace(";", " ").split() if p]
    if not parts:
        raise CampaignError(_("Give at least one address to send the test to."))
    if len(parts) > TEST_RECIPIENTS_MAX:
        raise CampaignError(
            _("A test goes to at most %(TEST_RECIPIENTS_MAX)s addresses.")
            % {"TEST_RECIPIENTS_MAX": TEST_RECIPIENTS_MAX}
        )
    addresses = []
    for part in parts:
        try:
            addresses.append(normalise_email(part))
        except InvalidEmail as error:
            raise CampaignError(str(error)) from None
    return list(dict.fromkeys(addresses))


def spend_test_quota(account: Account, messages: int) -> None:
    """Count `messages` test messages against the account's hourly allowance."""
    if not ratelimit.spend(
        "campaigns.test-messages",
        str(account.pk),
        messages,
        limit=TEST_MESSAGES_PER_HOUR,
        seconds=3600,
    ):
        raise CampaignError(
            _(
                "This account sent %(TEST_MESSAGES_PER_HOUR)s test messages in the last hour; "
                "try again later."
            )
            % {"TEST_MESSAGES_PER_HOUR": TEST_MESSAGES_PER_HOUR}
        )
