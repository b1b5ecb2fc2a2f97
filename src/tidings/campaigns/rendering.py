"""Rendering a campaign for one contact: subject, HTML and plain text.

The pipeline: the content (rich text or Markdown made into sanitised HTML, or the
customer's own HTML) is a Jinja template rendered in the sandbox (`sandbox.py`,
autoescaped); the layout wraps it (`{{ content }}`) with the preheader and the footer
links; the CSS is inlined (css-inline, never loading a stylesheet from anywhere); the
plain-text part comes from the same templates turned into text by inscriptis.

A template sees plain data only: the contact it is rendered for (email, name,
first_name, last_name, attributes), the campaign's name, sender and the sender's postal
address (`campaign.postal_address`, given by the sending engine), the rendered
subject and preheader, and the links the sending engine passes
(`unsubscribe_url`, `preferences_url`; "#" when none are given). Never settings,
files, models or other contacts.

Everything that does not depend on the contact (conversion, compilation, the text
template) is prepared once per campaign content and cached, so the sending engine can
call `render()` for every message.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
from django.utils.translation import gettext
from jinja2 import ChainableUndefined, meta, nodes
from markupsafe import Markup

from tidings.audience.models import Contact
from tidings.campaigns import content, renderpool
from tidings.campaigns.models import Campaign, Layout
from tidings.campaigns.sandbox import (
    GuardedTemplate,
    TemplateError,
    compile_template,
    environment,
    run,
)

__all__ = [
    "DEFAULT_LINKS",
    "Rendered",
    "TemplateError",
    "check",
    "check_layout",
    "contact_context",
    "default_layout_html",
    "problems",
    "render",
    "render_string",
    "sample_contact",
]

# The links the layout's footer offers; the sending engine passes the real ones.
DEFAULT_LINKS: dict[str, str] = {"unsubscribe_url": "#", "preferences_url": "#"}
_LINK_NAME = re.compile(r"[a-z][a-z0-9_]*_url")

_INLINER = css_inline.CSSInliner(
    load_remote_stylesheets=False, keep_link_tags=False, keep_at_rules=True
)


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str
    preheader: str = ""
    # The link variables (`unsubscribe_url`, ...) the body and layout print: a sender
    # adds its own unsubscribe footer when "unsubscribe_url" is not among them.
    links_used: frozenset[str] = frozenset()


@functools.cache
def default_layout_html(language: str | None = None) -> str:
    """The layout used when a campaign has none of its own (responsive, accessible,
    hidden preheader, footer with the unsubscribe and preferences links), in the
    account's language (`layouts/default.<language>.html`; English otherwise)."""
    folder = Path(__file__).parent / "layouts"
    translated = folder / f"default.{language}.html"
    chosen = translated if language and translated.is_file() else folder / "default.html"
    return chosen.read_text(encoding="utf-8")


class Attributes(dict[str, Any]):
    """A contact's attributes; a missing one is quietly empty, so that
    `{{ contact.attributes.city | default("there") }}` works for every contact."""

    def __missing__(self, key: str) -> ChainableUndefined:
        return ChainableUndefined(name=key)


def contact_context(contact: Contact) -> dict[str, Any]:
    return person(contact.email, contact.name, contact.attributes)


def person(email: str, name: str | None, attributes: dict[str, Any] | None) -> dict[str, Any]:
    """What a template sees of a contact, from its values."""
    name = name or ""
    first, _sep, last = name.strip().partition(" ")
    return {
        "email": email,
        "name": name,
        "first_name": first,
        "last_name": last.strip(),
        "attributes": Attributes(attributes or {}),
    }


def campaign_context(campaign: Campaign, *, postal_address: str = "") -> dict[str, Any]:
    return {
        "name": campaign.name,
        "from_name": campaign.from_name,
        "from_email": campaign.from_email,
        "postal_address": postal_address,
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def body_html_source(body: str, content_format: str) -> str:
    """The campaign body as an HTML template: Markdown converted and sanitised, rich
    text sanitised (again: it may have come from the API), raw HTML as it is."""
    if content_format == Campaign.Format.MARKDOWN:
        return content.markdown_to_html(body)
    if content_format == Campaign.Format.RICHTEXT:
        return content.sanitise(body)
    return body


def _text_source(html_source: str) -> str | None:
    source = content.html_to_text_template(html_source)
    try:
        compile_template(source, html=False)
    except TemplateError:
        return None  # a tag the text conversion dropped broke a block: convert per message
    return source


def _text_template(source: str | None) -> GuardedTemplate | None:
    return compile_template(source, html=False) if source is not None else None


def _inline(html: str) -> str:
    try:
        return _INLINER.inline(html)
    except (css_inline.InlineError, ValueError) as error:
        raise TemplateError(
            gettext("the layout's CSS cannot be inlined: %(error)s") % {"error": error}
        ) from None


@dataclass(frozen=True)
class Prepared:
    """A campaign's templates, compiled once and rendered for each contact.

    `inlined` is the body placed in the layout with the CSS already inlined, so that a
    message costs no CSS work; it is None when that could change a message (then each
    rendered message is inlined)."""

    subject: GuardedTemplate
    preheader: GuardedTemplate
    body_html: GuardedTemplate
    layout_html: GuardedTemplate
    body_text: GuardedTemplate | None
    layout_text: GuardedTemplate | None
    links_used: frozenset[str] = frozenset()
    inlined: GuardedTemplate | None = None
    # The sources of the inlined and text templates, for `splice`.
    inlined_source: str | None = None
    body_text_source: str | None = None
    layout_text_source: str | None = None

    def _body(self, context: dict[str, Any]) -> Markup:
        # The body's own template escaped every value it printed: it is safe HTML.
        return Markup(run(self.body_html, context))  # noqa: S704

    def html(self, context: dict[str, Any]) -> str:
        """The inlined HTML: from the pre-inlined template when there is one; an error
        there is reported by the separate templates, whose lines are the customer's."""
        if self.inlined is not None:
            try:
                return run(self.inlined, context)
            except TemplateError:
                pass
        return _inline(run(self.layout_html, {**context, "content": self._body(context)}))

    def text(self, context: dict[str, Any]) -> str:
        # The preheader is for the inbox list, not for the text part.
        context = {**context, "preheader": ""}
        if self.body_text is not None and self.layout_text is not None:
            body_text = run(self.body_text, context)
            return content.tidy_text(run(self.layout_text, {**context, "content": body_text}))
        return content.html_to_text(
            run(self.layout_html, {**context, "content": self._body(context)})
        )

    def render(self, context: dict[str, Any]) -> Rendered:
        subject = _one_line(run(self.subject, context))
        preheader = _one_line(run(self.preheader, context))
        context = {**context, "subject": subject, "preheader": preheader}
        return Rendered(
            subject=subject,
            html=self.html(context),
            text=self.text(context),
            preheader=preheader,
            links_used=self.links_used,
        )


_CONTENT_SLOT = re.compile(r"\{\{-?\s*content\s*-?\}\}")

# Contacts the pre-inlined template is compared on, one plain and one with every
# character HTML treats specially.
_CHECK_CONTACTS = (
    {"email": "alex.sample@example.com", "name": "Alex Sample"},
    {"email": "o.brien+x@example.com", "name": 'Zoë "Q" O\'Brien <&> '},
)


def _same_html(a: str, b: str) -> bool:
    return _inline(a).split() == _inline(b).split()


def _inlined_template(
    prepared: Prepared, body_source: str, layout: str
) -> tuple[GuardedTemplate, str] | None:
    """The body in the layout with the CSS inlined, as one template (and its source), if
    rendering it is the same as inlining each rendered message; None otherwise."""
    slots = _CONTENT_SLOT.findall(layout)
    names = environment(html=True).parse(layout).find_all(nodes.Name)
    if len(slots) != 1 or sum(n.name == "content" for n in names) != 1:
        return None
    start, end = _CONTENT_SLOT.search(layout).span()  # type: ignore[union-attr]
    try:
        inlined = content.inline_template(layout[:start] + body_source + layout[end:], _inline)
        if inlined is None:
            return None
        template = compile_template(inlined, html=True)
        for person in _CHECK_CONTACTS:
            # The customer's template runs here, in a preparation: one message's time.
            renderpool.one_message_at_most()
            contact = Contact(email=person["email"], name=person["name"], attributes={})
            context = {
                "contact": contact_context(contact),
                "campaign": {
                    "name": "N & Co",
                    "from_name": "N & Co",
                    "from_email": "n@x.example",
                    "postal_address": "1 <N> & Co Street, 1000 City",
                },
                **DEFAULT_LINKS,
            }
            expected = prepared.render(context)
            context |= {"subject": expected.subject, "preheader": expected.preheader}
            # Compared as an HTML parser reads them, blank runs aside (a comment moved
            # across a line break by the inliner changes no message).
            if not _same_html(run(template, context), expected.html):
                return None
    except TemplateError:
        return None
    return template, inlined


@functools.lru_cache(maxsize=32)
def _prepare(subject: str, preheader: str, body: str, content_format: str, layout: str) -> Prepared:
    body_source = body_html_source(body, content_format)
    body_text, layout_text = _text_source(body_source), _text_source(layout)
    html = environment(html=True)
    names = meta.find_undeclared_variables(html.parse(body_source)) | (
        meta.find_undeclared_variables(html.parse(layout))
    )
    prepared = Prepared(
        subject=compile_template(subject, html=False),
        preheader=compile_template(preheader, html=False),
        body_html=compile_template(body_source, html=True),
        layout_html=compile_template(layout, html=True),
        body_text=_text_template(body_text),
        layout_text=_text_template(layout_text),
        links_used=frozenset(n for n in names if _LINK_NAME.fullmatch(n)),
        body_text_source=body_text,
        layout_text_source=layout_text,
    )
    inlined = _inlined_template(prepared, body_source, layout)
    if inlined is None:
        return prepared
    return dataclasses.replace(prepared, inlined=inlined[0], inlined_source=inlined[1])


# A visual design is a whole email (MJML makes the page, its footer is a block): it is
# its own layout.
VISUAL_LAYOUT = "{{ content }}"


def layout_html(content_format: str, layout: Layout | None, language: str | None = None) -> str:
    """The layout a campaign body goes in (Tidings's default in the account's `language`
    when the campaign has none of its own)."""
    if content_format == Campaign.Format.VISUAL:
        return VISUAL_LAYOUT
    return layout.html if layout is not None else default_layout_html(language)


def layout_source(campaign: Campaign) -> str:
    # A campaign not yet saved to an account (a sandbox check) has Tidings's English default.
    language = campaign.account.language if campaign.account_id is not None else None
    return layout_html(campaign.content_format, campaign.layout, language)


def prepare(campaign: Campaign) -> Prepared:
    return _prepare(
        campaign.subject,
        campaign.preheader,
        campaign.body,
        campaign.content_format,
        layout_source(campaign),
    )


def _links(links: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(DEFAULT_LINKS)
    for name, url in (links or {}).items():
        if not _LINK_NAME.fullmatch(name):
            raise ValueError(f"link names end in _url: {name!r}")
        merged[name] = str(url)
    return merged


def render(
    campaign: Campaign,
    contact: Contact,
    *,
    links: Mapping[str, str] | None = None,
    postal_address: str = "",
) -> Rendered:
    """The subject, HTML and plain text of `campaign` for `contact`; `links` holds the
    URLs the footer offers (`unsubscribe_url`, `preferences_url`, ...), `postal_address`
    the sender's address the footer shows."""
    context = {
        "contact": contact_context(contact),
        "campaign": campaign_context(campaign, postal_address=postal_address),
        **_links(links),
    }
    sources = (
        campaign.subject,
        campaign.preheader,
        campaign.body,
        campaign.content_format,
        layout_source(campaign),
    )
    # In a render process, within the limits (renderpool): a preview of a template
    # that would take minutes or gigabytes gets a clear error, the web worker nothing.
    rendered: Rendered = renderpool.one(_rendered, sources, context)
    return rendered


def _rendered(
    sources: tuple[str, str, str, str, str], context: dict[str, Any]
) -> Iterator[Rendered]:
    yield _prepare(*sources).render(context)


def render_string(source: str, context: dict[str, Any], *, html: bool) -> str:
    """Render one template string in the sandbox (transactional messages, previews), in
    a render process within the limits."""
    text: str = renderpool.one(_string, source, context, html)
    return text


def _string(source: str, context: dict[str, Any], html: bool) -> Iterator[str]:
    yield run(compile_template(source, html=html), context)


def warm_up() -> None:
    """Render a made-up Markdown campaign in the default layout, in this process (the
    render processes' fork server): the first render of a process sets up the
    converters, the CSS inliner and the sandbox's compiler, seconds on a busy machine
    that no render process forked from it then pays."""
    context = {
        "contact": contact_context(sample_contact()),
        "campaign": {"name": "N", "from_name": "N", "from_email": "n@example.com"},
        **DEFAULT_LINKS,
    }
    body = "# Hello {{ contact.first_name }}\n\nSome *news*, [a link](https://example.com)."
    _prepare("Hi {{ contact.name }}", "Hi", body, Campaign.Format.MARKDOWN, default_layout_html())
    _prepare.cache_clear()  # then once more, as a campaign's first message is made
    _prepare("Hi", "Hi", body, Campaign.Format.MARKDOWN, default_layout_html()).render(context)
    _prepare.cache_clear()


def check(source: str, *, html: bool = True) -> None:
    """Raise TemplateError naming the line if `source` cannot be compiled (syntax,
    unknown filters or tests, includes, size)."""
    compile_template(source, html=html, strict=True)


def check_layout(source: str) -> None:
    """A layout must compile and place the campaign's `{{ content }}`."""
    check(source)
    tree = environment(html=True).parse(source)
    if not any(n.name == "content" for n in tree.find_all(nodes.Name) if n.ctx == "load"):
        raise TemplateError(
            gettext("a layout must contain {{ content }} where the campaign's content goes")
        )


def sample_contact(account: Any = None) -> Contact:
    """A made-up contact (never saved) to preview and check templates with."""
    return Contact(
        account=account, email="alex.sample@example.com", name="Alex Sample", attributes={}
    )


def problems(
    *,
    subject: str,
    preheader: str,
    body: str,
    content_format: str,
    layout: str,
    contacts: Iterable[Contact] = (),
    campaign: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What is wrong with a campaign's templates, by field, as found at save time.

    Each part is compiled, then rendered with undefined names as errors for a sample
    contact and for `contacts`, so a typo or a failing expression is reported with its
    line now, not when the campaign is sent. A missing attribute is not an error (a
    contact may not have it): use `default`. The renders run in a render process within
    the limits (a message's time for each contact), so a template that would exhaust
    them is reported here too; one whose cost hides behind a condition on the contact
    is still stopped when it is sent.
    """
    people = [sample_contact(), *contacts]
    limits = renderpool.Limits.current()
    outcome = renderpool.run(
        _problems,
        dict(
            subject=subject, preheader=preheader, body=body, content_format=content_format,
            layout=layout, contacts=people, campaign=campaign, links=links,
        ),
        limits=renderpool.Limits(limits.timeout * len(people), limits.memory_mb),
    )  # fmt: skip
    if outcome.error is not None:
        return {"body" if body else "layout": str(outcome.error)}
    found: dict[str, str] = outcome.results[0]
    return found


def _problems(arguments: dict[str, Any]) -> Iterator[dict[str, str]]:
    yield _find_problems(**arguments)


def _find_problems(
    *,
    subject: str,
    preheader: str,
    body: str,
    content_format: str,
    layout: str,
    contacts: list[Contact],
    campaign: Mapping[str, str] | None,
    links: Mapping[str, str] | None,
) -> dict[str, str]:
    found: dict[str, str] = {}
    parts = {"subject": (subject, False), "preheader": (preheader, False), "body": (body, True)}
    templates: dict[str, GuardedTemplate] = {}
    for field, (source, html) in parts.items():
        try:
            templates[field] = compile_template(source, html=html, strict=True)
        except TemplateError as error:
            found[field] = str(error)
    try:
        compile_template(body_html_source(body, content_format), html=True)
    except TemplateError as error:
        found.setdefault("body", str(error))
    try:
        check_layout(layout)
        templates["layout"] = compile_template(layout, html=True, strict=True)
    except TemplateError as error:
        found["layout"] = str(error)
    if found:
        return found
    for contact in contacts:
        context: dict[str, Any] = {
            "contact": contact_context(contact),
            "campaign": {
                "postal_address": "",
                **(campaign or {"name": "", "from_name": "", "from_email": ""}),
            },
            "subject": "",
            "preheader": "",
            **_links(links),
        }
        for field in ("subject", "preheader", "body"):
            if field in found:
                continue
            try:
                output = run(templates[field], context)
            except TemplateError as error:
                found[field] = _for(error, contact)
            else:
                if field != "body":
                    context[field] = _one_line(output)
        if "layout" not in found:
            try:
                run(templates["layout"], {**context, "content": Markup("<p>content</p>")})
            except TemplateError as error:
                found["layout"] = _for(error, contact)
    return found


_NO_ATTRIBUTE = re.compile(r"'dict object' has no attribute '([^']*)'")


def _for(error: TemplateError, contact: Contact) -> str:
    message = _NO_ATTRIBUTE.sub(r"there is no '\1' here", str(error))
    return message if contact.pk is None else f"{message} (for {contact.email})"
