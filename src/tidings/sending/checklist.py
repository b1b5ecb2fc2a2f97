"""Rails before sending: the checklist of a campaign, read from one of its messages
built exactly as the engine builds it.

1. The message: `CampaignMailer` makes it for a made-up contact, in a render process
   within the limits, with the From, headers, links and footer it would really carry.
2. Each check reads that message (or the campaign's audience, through the one
   mailability rule) and says passed, warning or blocking, with a one-line hint and the
   page where it is mended.
3. The blocking checks are the rule `lifecycle` applies before a campaign starts or is
   scheduled, whoever asks (the pages, the API, the scheduler): `refuse_unready`.
4. Credits (`billing.credits`): a campaign needs one per recipient, or a plan whose
   contact limit covers them; short, it is blocking with a link to order. `lifecycle`
   reserves them once when the campaign starts, never per message. Sending suspended
   for an unpaid renewal (`billing.dunning`, day 14) is blocking too, with a link to
   Billing.
5. A send to more recipients than SENDING["confirm_over"] needs their exact number
   given back, checked in `refuse_unready` too, so no page or API call skips it.
6. SpamAssassin scores the message in a worker job (`score_spam`), never in a web
   request; its result is cached under a key of the campaign's content and shown once
   it is there ("not available" where spamassassin is not installed).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html as html_lib
import logging
import re
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import lxml.html
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from tidings.billing import credits, dunning
from tidings.campaigns import content, rendering
from tidings.campaigns.models import Campaign
from tidings.core import jobs
from tidings.sending import recipients, spamassassin, tracking
from tidings.sending.mailer import CampaignMailer, Recipient
from tidings.sending.message import undo_dot_stuffing
from tidings.sending.models import SendingSettings
from tidings.sending.senders import sender_for
from tidings.sending.services import postal_address_of

log = logging.getLogger(__name__)

PASSED, WARNING, BLOCKING = "passed", "warning", "blocking"
# The SpamAssassin check only: not scored yet, or spamassassin is not there.
PENDING, UNAVAILABLE = "pending", "unavailable"
STATE_LABELS = {
    PASSED: gettext_lazy("Passed"),
    WARNING: gettext_lazy("Warning"),
    BLOCKING: gettext_lazy("Blocking"),
    PENDING: gettext_lazy("Pending"),
    UNAVAILABLE: gettext_lazy("Not available"),
}

# Gmail cuts a message's HTML beyond 102 KB behind a "[Message clipped]" link.
SIZE_WARNING = 100 * 1024
# SpamAssassin's own threshold is 5 points; above this many the message is at risk.
SPAM_WARNING = 3.0
SPAM_JOB = "tidings.sending.tasks.score_campaign_spam"
SPAM_CACHE_SECONDS = 7 * 24 * 3600
# While a job is queued or running, no other is queued for the same content.
SPAM_QUEUED_SECONDS = 3 * spamassassin.TIMEOUT
# The made-up contact every checklist message is made for (its links are real links
# that lead to no contact).
SAMPLE_UUID = uuid.UUID(int=0).hex


class NotReady(ValueError):
    """The campaign cannot be sent as it is; the message says what to mend."""


@dataclass(frozen=True)
class Check:
    key: str
    label: str
    state: str
    detail: str
    hint: str = ""
    fix_url: str = ""


@dataclass
class Checklist:
    checks: list[Check]
    recipients: int
    confirm_over: int = field(default_factory=lambda: settings.SENDING["confirm_over"])

    @property
    def blocking(self) -> list[Check]:
        return [c for c in self.checks if c.state == BLOCKING]

    @property
    def needs_confirmation(self) -> bool:
        return self.recipients > self.confirm_over


def _sample(campaign: Campaign) -> Recipient:
    person = rendering.sample_contact()
    return Recipient(
        delivery_id=0,
        message_id="<checklist@tidings.invalid>",
        email=person.email,
        name=person.name or "",
        attributes={},
        uuid=SAMPLE_UUID,
        # As a contact who allows tracking gets it: the open pixel counts for the
        # spam score.
        allow_tracking=True,
    )


def sample_message(campaign: Campaign) -> bytes:
    """The campaign's message for the made-up contact, as it would go out (the render
    process's limits apply). TemplateError when it cannot be made."""
    made = CampaignMailer(campaign).wire_many([_sample(campaign)])[0]
    if isinstance(made, rendering.TemplateError):
        raise made
    if not isinstance(made, bytes):
        raise rendering.TemplateError(str(made or "the message could not be made"))
    return undo_dot_stuffing(made)


def _parts(raw: bytes) -> tuple[EmailMessage, str, str]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    html = html_part.get_content() if html_part is not None else ""
    text = text_part.get_content() if text_part is not None else ""
    return message, html, text


def _edit(campaign: Campaign, anchor: str = "") -> str:
    url = reverse("campaigns:edit", kwargs={"uuid": campaign.uuid})
    return f"{url}#{anchor}" if anchor else url


def _settings(anchor: str) -> str:
    return f"{reverse('sending:settings')}#{anchor}"


# The checks --------------------------------------------------------------------------------


def _subject(campaign: Campaign, rendered: str) -> Check:
    label = _("Subject")
    fix = _edit(campaign, "id_subject")
    if not campaign.subject.strip():
        return Check(
            "subject",
            label,
            BLOCKING,
            _("There is no subject."),
            _("Write the subject people see in their inbox."),
            fix,
        )
    if not rendered.strip():
        return Check(
            "subject",
            label,
            WARNING,
            _("The subject comes out empty for a contact without the values it prints."),
            _('Give its values a default, e.g. | default("friend").'),
            fix,
        )
    return Check("subject", label, PASSED, f"“{rendered}”")


def _sender(campaign: Campaign, message: EmailMessage) -> Check:
    sender = sender_for(
        campaign.account_id,
        from_email=campaign.from_email,
        from_name=campaign.from_name,
        reply_to=campaign.reply_to,
    )
    shown = str(message["From"] or sender.from_email)
    label = _("Sender")
    if sender.from_email.lower() != campaign.from_email.lower():
        return Check(
            "sender",
            label,
            WARNING,
            _(
                "From: %(shown)s, with replies to %(asked)s: %(asked)s is not at a sending "
                "domain proven yours."
            )
            % {"shown": shown, "asked": campaign.from_email},
            _("Prove your domain to send as it."),
            _settings("domains"),
        )
    return Check("sender", label, PASSED, _("From: %(shown)s") % {"shown": shown})


def _postal_address(campaign: Campaign, html: str, text: str) -> Check:
    address = postal_address_of(campaign.account)
    label = _("Postal address")
    fix = _settings("postal")
    if not address:
        return Check(
            "postal_address",
            label,
            BLOCKING,
            _("Your postal address is missing: every campaign must show it (CAN-SPAM)."),
            _("Add your postal address in the sending settings."),
            fix,
        )
    missing_html, missing_text = tracking.shows_postal_address(html, text, address)
    if missing_html or missing_text:
        return Check(
            "postal_address",
            label,
            BLOCKING,
            _("The footer does not show your postal address."),
            _("Print {{ campaign.postal_address }} in your layout's footer."),
            fix,
        )
    return Check("postal_address", label, PASSED, _("In the footer: %(a)s") % {"a": address})


def _unsubscribe(message: EmailMessage, html: str, text: str) -> Check:
    """The message's own unsubscribe link (its List-Unsubscribe header, which the
    engine always writes) must also be a link in the HTML and a line of the text."""
    header = str(message["List-Unsubscribe"] or "")
    found = re.search(r"<(https?://[^>]+)>", header)
    url = found.group(1) if found else None
    in_html = url is not None and any(
        html_lib.unescape(m.group(3)) == url for m in tracking.HREF.finditer(html)
    )
    in_text = url is not None and url in text
    label = _("Unsubscribe link")
    if in_html and in_text:
        return Check(
            "unsubscribe",
            label,
            PASSED,
            _("In the message and in its List-Unsubscribe header (one click)."),
        )
    where = [
        w
        for w, present in (
            (_("the headers"), url is not None),
            (_("the HTML"), in_html),
            (_("the text part"), in_text),
        )
        if not present
    ]
    return Check(
        "unsubscribe",
        label,
        BLOCKING,
        _("No working unsubscribe link in %(where)s.") % {"where": ", ".join(where)},
        _("Print {{ unsubscribe_url }} as a link in your layout, where every contact sees it."),
        reverse("campaigns:layouts"),
    )


def _placeholder(campaign: Campaign, html: str, text: str) -> Check:
    label = _("Your own content")
    fix = _edit(campaign, "id_body")
    if not campaign.body.strip():
        return Check(
            "placeholder",
            label,
            BLOCKING,
            _("The message has no content."),
            _("Write the campaign's body."),
            fix,
        )
    left = content.placeholder_left(html, text)
    if left is not None:
        return Check(
            "placeholder",
            label,
            BLOCKING,
            _("The message still shows the starter text (“%(left)s”).") % {"left": left},
            _("Replace the starter text and its example link with your own."),
            fix,
        )
    return Check("placeholder", label, PASSED, _("No starter text left."))


_IMG = re.compile(r"<img\b", re.I)


def _images(campaign: Campaign, html: str) -> Check:
    label = _("Image descriptions")
    if not _IMG.search(html):
        return Check("images", label, PASSED, _("No images."))
    tree = lxml.html.document_fromstring(html)
    images = [
        img
        for img in tree.iter("img")
        # A 1x1 image is a spacer or the open pixel: nothing to describe.
        if not (img.get("width") == "1" and img.get("height") == "1")
    ]
    bare = [img for img in images if not (img.get("alt") or "").strip()]
    if not bare:
        return Check(
            "images",
            label,
            PASSED,
            ngettext("%(n)d image, described.", "%(n)d images, all described.", len(images))
            % {"n": len(images)},
        )
    return Check(
        "images",
        label,
        WARNING,
        ngettext(
            "%(n)d image of %(all)d has no alt text (%(src)s).",
            "%(n)d images of %(all)d have no alt text (first: %(src)s).",
            len(bare),
        )
        % {"n": len(bare), "all": len(images), "src": (bare[0].get("src") or "")[:80]},
        _("Describe each image in its alt text: many mail programs hide images at first."),
        _edit(campaign, "id_body"),
    )


def _size(campaign: Campaign, raw: bytes) -> Check:
    label = _("Message size")
    size = number_format(round(len(raw) / 1024), force_grouping=True)
    if len(raw) > SIZE_WARNING:
        return Check(
            "size",
            label,
            WARNING,
            _("%(kb)s KB: Gmail clips messages beyond 102 KB.") % {"kb": size},
            _("Shorten the content or link to the rest."),
            _edit(campaign, "id_body"),
        )
    return Check("size", label, PASSED, _("%(kb)s KB") % {"kb": size})


def _spam(campaign: Campaign, key: str) -> Check:
    label = _("SpamAssassin score")
    found = cache.get(_spam_cache_key(key))
    if found is None:
        return Check("spam", label, PENDING, _("Scoring the message…"))
    if found.get("score") is None:
        return Check(
            "spam",
            label,
            UNAVAILABLE,
            _("Not available: %(why)s") % {"why": found.get("error", "")},
        )
    score = found["score"]
    rules = ", ".join(found.get("rules", [])[:6])
    detail = _("%(score)s points (5 is SpamAssassin's threshold)") % {"score": f"{score:.1f}"}
    if rules:
        detail += f": {rules}"
    if score >= SPAM_WARNING:
        return Check(
            "spam",
            label,
            WARNING,
            detail,
            _(
                "Mend what the rules name: fewer capitals and exclamation marks, more "
                "text beside images."
            ),
            _edit(campaign, "id_body"),
        )
    return Check("spam", label, PASSED, detail)


def _recipients(campaign: Campaign, count: int, confirm_over: int) -> Check:
    label = _("Recipients")
    fix = _edit(campaign, "id_lists")
    if count == 0:
        return Check(
            "recipients",
            label,
            BLOCKING,
            _("Nobody would receive it."),
            _("Choose a list or segment with subscribed contacts."),
            fix,
        )
    detail = ngettext(
        "%(n)s contact may be mailed now.", "%(n)s contacts may be mailed now.", count
    ) % {"n": number_format(count, force_grouping=True)}
    if count > confirm_over:
        detail += " " + _("You confirm the number before it goes.")
    return Check("recipients", label, PASSED, detail)


def _credits(campaign: Campaign, count: int) -> Check:
    label = _("Credits")
    refused = credits.refusal(campaign.account, count)
    if refused:
        return Check(
            "credits",
            label,
            BLOCKING,
            refused,
            _("Order credits or a plan, then start the campaign."),
            reverse("billing:pricing"),
        )
    if not credits.needs_credits(campaign.account):
        return Check("credits", label, PASSED, _("Covered by your plan."))
    have = credits.balance_of(campaign.account).available
    return Check(
        "credits",
        label,
        PASSED,
        _("%(n)s of your %(have)s credits.")
        % {
            "n": number_format(count, force_grouping=True),
            "have": number_format(have, force_grouping=True),
        },
    )


def _payment(campaign: Campaign) -> list[Check]:
    """Blocking while sending is suspended for an unpaid renewal; absent otherwise."""
    suspended = dunning.suspension(campaign.account)
    if suspended is None:
        return []
    return [
        Check(
            "payment",
            _("Payment"),
            BLOCKING,
            _(
                "Sending is suspended: the renewal of your plan %(plan)s is unpaid. Your "
                "data is kept and everything else works."
            )
            % {"plan": suspended.offer.name},
            _("Pay it on the Billing page: sending is allowed again at once."),
            reverse("billing:billing"),
        )
    ]


# The checklist -----------------------------------------------------------------------------


def content_key(campaign: Campaign) -> str:
    """What the message depends on, as one key: its templates, footer, sender, tracking."""
    options = SendingSettings.objects.filter(account_id=campaign.account_id).first()
    sender = sender_for(
        campaign.account_id,
        from_email=campaign.from_email,
        from_name=campaign.from_name,
        reply_to=campaign.reply_to,
    )
    parts = [
        campaign.pk,
        campaign.subject,
        campaign.preheader,
        campaign.body,
        campaign.content_format,
        rendering.layout_source(campaign),
        campaign.track_opens,
        campaign.track_clicks,
        sender.from_email,
        sender.from_name,
        sender.reply_to,
        options.postal_address if options else "",
        options.tracking if options else "",
    ]
    # str(): a choice read from the database and one just set are the same text.
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()


def checklist(campaign: Campaign) -> Checklist:
    """Every check of `campaign` as it would go out now."""
    confirm_over = settings.SENDING["confirm_over"]
    count = recipients.count(campaign)
    try:
        raw = sample_message(campaign)
    except rendering.TemplateError as error:
        checks = [
            Check(
                "content",
                _("Content"),
                BLOCKING,
                _("The message cannot be made: %(error)s") % {"error": error},
                _("Mend the template it names."),
                _edit(campaign),
            )
        ]
        checks += [_recipients(campaign, count, confirm_over), _credits(campaign, count)]
        return Checklist(checks + _payment(campaign), count, confirm_over)
    message, html, text = _parts(raw)
    checks = [
        _subject(campaign, str(message["Subject"] or "")),
        _sender(campaign, message),
        _postal_address(campaign, html, text),
        _unsubscribe(message, html, text),
        _placeholder(campaign, html, text),
        _images(campaign, html),
        _size(campaign, raw),
        _spam(campaign, content_key(campaign)),
        _recipients(campaign, count, confirm_over),
        _credits(campaign, count),
        *_payment(campaign),
    ]
    return Checklist(checks, count, confirm_over)


def refuse_unready(
    campaign: Campaign, *, confirmed_recipients: int | None, confirming: bool = True
) -> Checklist:
    """NotReady when a blocking check fails, or when a send to more than the threshold
    does not come with its exact number of recipients (`confirmed_recipients`).
    `confirming=False` only for the scheduler: a scheduled campaign was confirmed when
    it was scheduled."""
    found = checklist(campaign)
    blocking = found.blocking
    if blocking:
        raise NotReady(
            _("Not ready to send: %(problems)s")
            % {"problems": " ".join(f"{c.detail} {c.hint}".strip() for c in blocking)}
        )
    if confirming and found.needs_confirmation and confirmed_recipients != found.recipients:
        raise NotReady(
            _(
                "This campaign goes to %(n)s contacts: confirm by giving that number. "
                "Nothing was sent or scheduled."
            )
            % {"n": number_format(found.recipients, force_grouping=True)}
        )
    return found


# SpamAssassin ------------------------------------------------------------------------------


def _spam_cache_key(key: str) -> str:
    return f"tidings:checklist:spam:{key}"


def request_spam_score(campaign: Campaign) -> Check:
    """The spam check as it stands; when the content has no score yet, a job is queued
    to make one (once, while it runs)."""
    key = content_key(campaign)
    check = _spam(campaign, key)
    if check.state == PENDING and cache.add(
        _spam_cache_key(key) + ":queued", 1, SPAM_QUEUED_SECONDS
    ):
        jobs.enqueue(SPAM_JOB, campaign.pk)
        check = _spam(campaign, key)  # an eager run (tests) has scored it already
    return check


def score_spam(campaign_id: int) -> dict[str, Any] | None:
    """The worker's part: score the campaign's message and keep the result for its
    content. None when the campaign is gone or cannot be rendered."""
    campaign = Campaign.objects.select_related("layout").filter(pk=campaign_id).first()
    if campaign is None:
        return None
    key = content_key(campaign)
    try:
        raw = sample_message(campaign)
    except rendering.TemplateError:
        cache.delete(_spam_cache_key(key) + ":queued")
        return None
    result = spamassassin.report(raw)
    cache.set(_spam_cache_key(key), result, SPAM_CACHE_SECONDS)
    cache.delete(_spam_cache_key(key) + ":queued")
    return result
