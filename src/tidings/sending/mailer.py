"""The bytes of each message of a campaign, made fast.

Everything that is the same for every message is made once per batch: the relay, the
DKIM signer, the
headers' skeleton, the templates, the footer, and, when the templates allow it
(`campaigns.splice`), the whole message body as fixed pieces already encoded in
quoted-printable, with only the contact's values, links and subject rendered and
encoded per message. A message that cannot be spliced is rendered in full; both ways
give the same bytes (tests/sending/test_mailer.py).
"""

from __future__ import annotations

import html as html_lib
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tidings.audience.links import preference_url_for
from tidings.campaigns import rendering, renderpool, splice
from tidings.campaigns.models import Campaign
from tidings.campaigns.sandbox import TemplateError, run
from tidings.core import locales
from tidings.sending import tracking
from tidings.sending.message import (
    DkimSigner,
    Skeleton,
    dot_stuff,
    qp_piece,
    signer,
    undo_dot_stuffing,
)
from tidings.sending.models import Relay, SendingSettings
from tidings.sending.relays import RelayConfig, relay_for
from tidings.sending.senders import sender_for

log = logging.getLogger(__name__)
# The render processes make this module's messages: it and the URL patterns its links
# need are loaded once in their fork server.
renderpool.preload("tidings.sending.renderpreload")

# Marks in a campaign's fixed text: a template's value, and the footer's unsubscribe link.
_HOLE = re.compile("\ue000(\\d+)\ue001|\ue003")
_FOOTER_LINK = "\ue003"


@dataclass(frozen=True)
class Recipient:
    """One delivery as the engine claimed it: the contact's values, not a model."""

    delivery_id: int
    message_id: str
    email: str
    name: str
    attributes: dict[str, Any]
    uuid: str
    allow_tracking: bool


@dataclass(frozen=True)
class Pieces:
    """A part's fixed text, encoded, and what goes between the pieces: a template value
    (its index) or the footer's unsubscribe link (None)."""

    encoded: tuple[bytes, ...]
    holes: tuple[int | None, ...]
    # The same pieces as they go over SMTP, dot-stuffed: each piece starts a line (the
    # one before ends with a soft line break), so each is stuffed once, on its own.
    stuffed: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, marked: str) -> Pieces:
        encoded, holes, at = [], [], 0
        for match in _HOLE.finditer(marked):
            encoded.append(qp_piece(marked[at : match.start()]))
            holes.append(int(match.group(1)) if match.group(1) is not None else None)
            at = match.end()
        encoded.append(qp_piece(marked[at:]))
        return cls(tuple(encoded), tuple(holes), tuple(dot_stuff(p) for p in encoded))

    def fill(self, values: list[str], link: str, *, stuffed: bool) -> list[bytes]:
        """The part for these values, as it is or as it goes over SMTP (`stuffed`)."""
        fixed = self.stuffed if stuffed else self.encoded
        encoded: dict[int | None, bytes] = {}  # each value encoded once
        out = [fixed[0]]
        for hole, piece in zip(self.holes, fixed[1:], strict=True):
            value = encoded.get(hole)
            if value is None:
                value = qp_piece(values[hole] if hole is not None else link)
                value = encoded[hole] = dot_stuff(value) if stuffed else value
            out += (value, piece)
        return out


@dataclass
class Variant:
    """The spliced body for contacts who allow tracking, or for those who do not."""

    html: Pieces | None = None
    text: Pieces | None = None


# The part of a mailer that depends on the campaign's templates and settings only.
_TEMPLATE_STATE = (
    "prepared",
    "fixed",
    "layout_links",
    "address_in_html",
    "address_in_text",
    "subject_fixed",
    "preheader_fixed",
    "html_part",
    "text_plan",
    "variants",
)
_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
_cache_lock = threading.Lock()


@dataclass
class CampaignMailer:
    campaign: Campaign
    relay: RelayConfig | None = None
    sender: str = ""
    skeleton: Skeleton | None = None
    dkim: DkimSigner | None = None
    postal_address: str = ""
    aggregate_only: bool = True
    unsubscribe_mailto: str = ""
    # The language of the footer Tidings adds: the account's contacts' (My Account).
    language: str = ""
    # What identifies the template state (`_TEMPLATE_STATE`) in the process's cache.
    key: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        campaign = self.campaign
        account_id = campaign.account_id
        self.relay = relay_for(account_id)
        options = SendingSettings.objects.filter(account_id=account_id).first()
        self.postal_address = options.postal_address if options else ""
        self.unsubscribe_mailto = options.unsubscribe_mailto if options else ""
        self.aggregate_only = options is None or options.tracking == options.Tracking.AGGREGATE
        self.language = campaign.account.language if campaign.account_id else ""
        # The From a customer asked for, if its domain is proven theirs (`senders`).
        sender = sender_for(
            account_id,
            from_email=campaign.from_email,
            from_name=campaign.from_name,
            reply_to=campaign.reply_to,
        )
        domain_key = sender.dkim
        self.dkim = (
            signer(domain_key.domain, domain_key.selector, domain_key.private_key)
            if domain_key is not None
            else None
        )
        first_list = campaign.lists.order_by("pk").first()
        self.skeleton = Skeleton.make(
            from_name=sender.from_name,
            from_email=sender.from_email,
            reply_to=sender.reply_to,
            list_name=first_list.name if first_list else campaign.name,
            list_key=(first_list.uuid.hex if first_list else campaign.uuid.hex),
        )
        self.sender = sender.envelope
        # Read here: a render process is given the campaign with its layout, and never
        # reads the database.
        _ = campaign.layout
        # What depends on the templates alone is made once per process that renders
        # (a render process, renderpool), when it is first needed.
        self.key = (
            campaign.pk,
            campaign.updated_at,
            self.postal_address,
            self.aggregate_only,
            campaign.track_opens,
            campaign.track_clicks,
        )

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set: the template state, made on first use.
        if name in _TEMPLATE_STATE and not self.__dict__.get("_loading"):
            self._load_templates()
            return self.__dict__[name]
        raise AttributeError(name)

    def __getstate__(self) -> dict[str, Any]:
        # Compiled templates do not pickle; a render process makes its own.
        return {k: v for k, v in self.__dict__.items() if k not in _TEMPLATE_STATE}

    def _load_templates(self) -> None:
        with _cache_lock:
            known = _cache.get(self.key)
        if known is not None:
            self.__dict__.update(known)
            return
        self.__dict__["_loading"] = True
        try:
            self._make_templates()
        finally:
            self.__dict__.pop("_loading", None)
        with _cache_lock:
            if len(_cache) >= 16:
                _cache.clear()
            _cache[self.key] = {name: self.__dict__[name] for name in _TEMPLATE_STATE}

    def _make_templates(self) -> None:
        campaign = self.campaign
        self.variants: dict[bool, Variant] = {}
        self.prepared = rendering.prepare(campaign)
        self.fixed = rendering.campaign_context(campaign, postal_address=self.postal_address)
        self.layout_links = "unsubscribe_url" in self.prepared.links_used
        sample = self.prepared.render(self._context(rendering.sample_contact(), "#", "#"))
        self.address_in_html, self.address_in_text = tracking.shows_postal_address(
            sample.html, sample.text, self.postal_address
        )
        self.subject_fixed = self._fixed_line(campaign.subject, self.prepared.subject)
        self.preheader_fixed = self._fixed_line(campaign.preheader, self.prepared.preheader)
        self._plan()

    # --- the two ways to a body --------------------------------------------------------

    def _context(self, contact: Any, unsubscribe: str, preferences: str) -> dict[str, Any]:
        person = contact if isinstance(contact, dict) else rendering.contact_context(contact)
        return {
            "contact": person,
            "campaign": self.fixed,
            "unsubscribe_url": unsubscribe,
            "preferences_url": preferences,
        }

    def context_for(
        self, recipient: Recipient, *, unsubscribe: str, preferences: str
    ) -> dict[str, Any]:
        """What the templates see for `recipient`, its subject and preheader rendered."""
        person = rendering.person(recipient.email, recipient.name, recipient.attributes)
        context = self._context(person, unsubscribe, preferences)
        subject = self.subject_fixed
        if subject is None:
            subject = " ".join(run(self.prepared.subject, context).split())
        preheader = self.preheader_fixed
        if preheader is None:
            preheader = " ".join(run(self.prepared.preheader, context).split())
        return context | {"subject": subject, "preheader": preheader}

    def _fixed_line(self, source: str, template: Any) -> str | None:
        """A subject or preheader that names nothing personal, rendered once."""
        if splice.personal_names(source, html=False):
            return None
        return " ".join(run(template, {"campaign": self.fixed}).split())

    def _tracked(self, recipient: Recipient) -> bool:
        c = self.campaign
        return recipient.allow_tracking and (c.track_opens or c.track_clicks)

    def body(self, recipient: Recipient, context: dict[str, Any]) -> tuple[str, str, str]:
        """(subject, HTML, text) rendered in full: the way every message can take."""
        rendered = self.prepared.render(context)
        html, text = rendered.html, rendered.text
        unsubscribe = context["unsubscribe_url"]
        if self._tracked(recipient):
            html = tracking.instrument(
                html,
                campaign=self.campaign,
                delivery_id=None if self.aggregate_only else recipient.delivery_id,
                skip=(unsubscribe, context["preferences_url"]),
            )
        html, text = self._footer(html, text, unsubscribe)
        return rendered.subject, html, text

    def _footer(self, html: str, text: str, unsubscribe: str) -> tuple[str, str]:
        # In the language of the account's contacts (My Account), like its other mail.
        with locales.language(self.language):
            return tracking.add_footer(
                html,
                text,
                unsubscribe_url=None if self.layout_links else unsubscribe,
                postal_address=self.postal_address,
                in_html=self.address_in_html,
                in_text=self.address_in_text,
            )

    def _plan(self) -> None:
        """The spliced bodies, where the templates allow them."""
        prepared = self.prepared
        context: dict[str, Any] = {"campaign": self.fixed}
        personal = set(splice.PERSONAL)
        # A subject or preheader that is the same for everyone is part of the fixed text.
        for name, fixed in (("subject", self.subject_fixed), ("preheader", self.preheader_fixed)):
            if fixed is not None:
                personal.discard(name)
                context[name] = fixed
        # The text part shows no preheader (Prepared.text).
        text_context = {**context, "preheader": ""}
        text_personal = frozenset(personal - {"preheader"})
        html_part = (
            splice.plan(
                prepared.inlined_source, html=True, context=context, personal=frozenset(personal)
            )
            if prepared.inlined_source is not None
            else None
        )
        text_plan = (
            splice.plan_text(
                prepared.body_text_source,
                prepared.layout_text_source,
                context=text_context,
                personal=text_personal,
            )
            if prepared.body_text_source is not None and prepared.layout_text_source is not None
            else None
        )
        self.html_part, self.text_plan = html_part, text_plan
        for tracked in (False, True):
            variant = Variant()
            if html_part is not None:
                marked = html_part.join([f"\ue000{i}\ue001" for i in range(html_part.count)])
                html = self._instrument_fixed(marked) if tracked else marked
                if html is not None:
                    html, _ = self._footer(html, "", _FOOTER_LINK)
                    variant.html = Pieces.of(html)
            if text_plan is not None:
                text = text_plan.part.join(
                    [f"\ue000{i}\ue001" for i in range(text_plan.part.count)]
                )
                _, text = self._footer("", text, _FOOTER_LINK)
                variant.text = Pieces.of(text)
            self.variants[tracked] = variant

    def _instrument_fixed(self, html: str) -> str | None:
        """Tracking added to the fixed text once, when it is the same for everyone:
        aggregate-only tracking, and no link that holds a contact's value; None when
        each tracked message must be rendered in full."""
        campaign = self.campaign
        if not (campaign.track_opens or campaign.track_clicks):
            return html
        if not self.aggregate_only:
            return None  # per-contact tokens name each delivery
        if any("\ue000" in match.group(3) for match in tracking.HREF.finditer(html)):
            return None
        return tracking.instrument(html, campaign=campaign, delivery_id=None)

    # --- in a render process -------------------------------------------------------------

    def wire_many(self, recipients: list[Recipient]) -> list[bytes | Exception | None]:
        """`wire_for` of each recipient, made in a render process within the limits
        (renderpool), in one round trip: for each, its bytes or the error that stopped
        its message. When a message hits a limit, its entry is that TemplateError (with
        `limit`) and those after it are None (not made)."""
        if not recipients:
            return []
        outcome = renderpool.run(_wire_units, self, recipients, prepare=True)
        made: list[bytes | Exception | None] = list(outcome.results[1:])
        if outcome.error is not None:
            made.append(outcome.error)
        return made + [None] * (len(recipients) - len(made))

    def proof(self, recipient: Recipient) -> tuple[str, str, str]:
        """(subject, HTML, text) of a test send for `recipient`, its links leading
        nowhere, made in a render process within the limits."""
        made: tuple[str, str, str] = renderpool.one(_proof_units, self, recipient)
        return made

    # --- one message ---------------------------------------------------------------------

    def message_for(self, recipient: Recipient) -> bytes:
        """The message's bytes, DKIM-signed where the sender's domain has a key."""
        return self.build(recipient, stuffed=False)

    def wire_for(self, recipient: Recipient) -> bytes:
        """The same message as it goes after SMTP's DATA: dot-stuffed (RFC 5321 4.5.2),
        the campaign's fixed pieces stuffed once for all its messages."""
        return self.build(recipient, stuffed=True)

    def build(self, recipient: Recipient, *, stuffed: bool) -> bytes:
        """The message, as it is or dot-stuffed; DKIM-signed where the sender's domain
        has a key (the signature covers the message, not its SMTP form)."""
        assert self.skeleton is not None
        unsubscribe = tracking.unsubscribe_url_for(recipient.uuid, self.campaign.pk)
        preferences = preference_url_for(recipient.uuid)
        context = self.context_for(recipient, unsubscribe=unsubscribe, preferences=preferences)
        subject = context["subject"]
        html, text = self._spliced(recipient, context, unsubscribe, stuffed=stuffed)
        if html is None or text is None:
            subject, full_html, full_text = self.body(recipient, context)
            html_piece, text_piece = qp_piece(full_html), qp_piece(full_text)
            html = html or [dot_stuff(html_piece) if stuffed else html_piece]
            text = text or [dot_stuff(text_piece) if stuffed else text_piece]
        head = self.skeleton.head(
            to=recipient.email,
            subject=subject,
            message_id=recipient.message_id,
            unsubscribe_urls=self._unsubscribe_urls(unsubscribe),
            headers=self._esp_headers(recipient.delivery_id),
        )
        data = self.skeleton.assemble(head, text, html)
        if self.dkim is None:
            return data
        # The signature covers the message as it is, not its SMTP form.
        return self.dkim.header(undo_dot_stuffing(data) if stuffed else data) + data

    def _spliced(
        self, recipient: Recipient, context: dict[str, Any], unsubscribe: str, *, stuffed: bool
    ) -> tuple[list[bytes] | None, list[bytes] | None]:
        variant = self.variants.get(self._tracked(recipient))
        if variant is None:
            return None, None
        html = text = None
        if variant.html is not None and self.html_part is not None:
            values = self.html_part.values_for(context)
            if values is not None:
                html = variant.html.fill(values, html_lib.escape(unsubscribe), stuffed=stuffed)
        if variant.text is not None and self.text_plan is not None:
            values_text = self.text_plan.values({**context, "preheader": ""})
            if values_text is not None:
                text = variant.text.fill(values_text, unsubscribe, stuffed=stuffed)
        return html, text

    def _unsubscribe_urls(self, unsubscribe: str) -> list[str]:
        urls = [unsubscribe]
        if self.unsubscribe_mailto:
            urls.append(f"mailto:{self.unsubscribe_mailto}?subject=unsubscribe")
        return urls

    def _esp_headers(self, delivery_id: int) -> tuple[tuple[str, str], ...]:
        """Headers a provider's SMTP relay turns into webhook metadata, so its bounce and
        complaint events name the delivery they are about."""
        esp = self.relay.esp if self.relay is not None else ""
        if esp == Relay.Esp.POSTMARK:
            return (("X-PM-Metadata-tidings", f"d{delivery_id}"),)
        if esp == Relay.Esp.MAILGUN:
            return (("X-Mailgun-Variables", f'{{"tidings": "d{delivery_id}"}}'),)
        return ()


def start_render_process() -> None:
    """Start a render process for this worker now, with the modules a message needs."""
    try:
        renderpool.run(_ready, prepare=True)
    except Exception:  # it is made again when the first batch needs it
        log.exception("a render process did not start")


def _ready() -> Iterator[None]:
    yield None


# Whether this process has made a message yet (the first costs tenfold).
_warm = False


def _wire_units(mailer: CampaignMailer, recipients: list[Recipient]) -> Iterator[Any]:
    """In a render process: the campaign's templates made ready, and in a fresh process
    a first message for the sample contact (the preparation, a unit of its own), then
    each recipient's message or what stopped it."""
    global _warm
    try:
        mailer.variants  # noqa: B018  (made on first use)
        if not _warm:
            sample = rendering.sample_contact()
            mailer.wire_for(
                Recipient(
                    0, "<warm@localhost>", sample.email, sample.name or "", {}, "0" * 32, True
                )
            )
            _warm = True
    except TemplateError as error:
        yield error
    else:
        yield None
    for recipient in recipients:
        try:
            yield mailer.wire_for(recipient)
        except MemoryError:
            raise  # the render process reports it as the memory limit
        except TemplateError as error:
            yield error
        except Exception as error:  # this one message fails, as it did in the worker
            yield RuntimeError(str(error) or type(error).__name__)


def _proof_units(mailer: CampaignMailer, recipient: Recipient) -> Iterator[tuple[str, str, str]]:
    context = mailer.context_for(recipient, unsubscribe="#", preferences="#")
    yield mailer.body(recipient, context)
