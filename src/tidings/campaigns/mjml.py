"""MJML, the visual editor's document, checked and compiled to HTML on the server.

The compiler is mrml (a Rust implementation of MJML 4). mrml accepts much that MJML's own
"strict" validation refuses (an unknown element, text straight in a section), so the
source is first checked here, element by element, against MJML 4's rules of what may
contain what. What loads from elsewhere is shut: no `mj-include` (files), no `mj-font`
and no font links (P29: no third-party request), and social icons come from Tidings's
own static files instead of mailjet.com.

The template tags (`{{ contact.first_name }}`, `{{ unsubscribe_url }}`) are swapped for
inert tokens while the MJML is checked and compiled, and put back after (as Markdown
conversion does, content.Protected): the result is an HTML template that goes through
the same sandbox and render pool as every other campaign body.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import mrml
from django.templatetags.static import static
from django.utils.translation import gettext as _

from tidings.campaigns.content import Protected
from tidings.campaigns.sandbox import MAX_SOURCE, TemplateError
from tidings.core.baseurl import absolute

# Elements whose content is text or HTML, not MJML (MJML calls them "ending tags").
ENDING = {
    "mj-text", "mj-button", "mj-table", "mj-raw", "mj-social-element", "mj-navbar-link",
    "mj-style", "mj-title", "mj-preview",
}  # fmt: skip
_CONTENT = {
    "mj-text", "mj-image", "mj-button", "mj-divider", "mj-spacer", "mj-social",
    "mj-navbar", "mj-table", "mj-raw",
}  # fmt: skip
_BODY = {"mj-wrapper", "mj-section", "mj-hero", "mj-group", "mj-column", *_CONTENT}
# What each element may contain (MJML 4's rules, less what loads from elsewhere).
CHILDREN: dict[str, set[str]] = {
    "mjml": {"mj-head", "mj-body"},
    "mj-head": {"mj-attributes", "mj-breakpoint", "mj-preview", "mj-style", "mj-title"},
    "mj-attributes": {"mj-all", "mj-class", *_BODY, "mj-social-element", "mj-navbar-link"},
    "mj-all": set(),
    "mj-class": set(),
    "mj-breakpoint": set(),
    "mj-body": {"mj-wrapper", "mj-section", "mj-hero", "mj-raw"},
    "mj-wrapper": {"mj-section", "mj-hero", "mj-raw"},
    "mj-section": {"mj-column", "mj-group", "mj-raw"},
    "mj-group": {"mj-column", "mj-raw"},
    "mj-column": set(_CONTENT),
    "mj-hero": set(_CONTENT),
    "mj-social": {"mj-social-element", "mj-raw"},
    "mj-navbar": {"mj-navbar-link", "mj-raw"},
    "mj-image": set(),
    "mj-divider": set(),
    "mj-spacer": set(),
    **{name: set() for name in ENDING},
}
_ATTRIBUTE = re.compile(r"[a-z][a-z0-9-]*")
_SAFE_URL = re.compile(r"\s*(https?:|mailto:|tel:|#|tdg[0-9a-f]{8}x\d+x)", re.I)
_URL_ATTRIBUTES = {"href", "src", "background-url"}


class MjmlError(TemplateError):
    """MJML that is refused; the message says where and why."""


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.seen_root = False
        self.problems: list[str] = []

    def _problem(self, text: str) -> None:
        line = self.getpos()[0]
        self.problems.append(_("line %(line)s: %(text)s") % {"line": line, "text": text})

    def _inside_text(self) -> bool:
        return bool(self.stack) and self.stack[-1] in ENDING

    def _open(self, tag: str, attrs: list[tuple[str, str | None]], closes: bool) -> None:
        if not (tag == "mjml" or tag.startswith("mj-")):
            if not self._inside_text():
                parent = self.stack[-1] if self.stack else "mjml"
                self._problem(
                    _("<%(tag)s> cannot sit in <%(parent)s>: put HTML in mj-text or mj-raw")
                    % {"tag": tag, "parent": parent}
                )
            return
        if tag not in CHILDREN:
            self._problem(_("<%(tag)s> is not an MJML element Tidings takes") % {"tag": tag})
            return
        if self._inside_text() and self.stack[-1] != "mj-attributes":
            self._problem(
                _("<%(tag)s> cannot sit inside the text of <%(parent)s>")
                % {"tag": tag, "parent": self.stack[-1]}
            )
            return
        if not self.stack:
            if tag != "mjml" or self.seen_root:
                self._problem(_("the document must be one <mjml> element"))
            self.seen_root = True
        elif tag not in CHILDREN[self.stack[-1]]:
            self._problem(
                _("<%(tag)s> cannot sit in <%(parent)s>") % {"tag": tag, "parent": self.stack[-1]}
            )
        for name, value in attrs:
            if not _ATTRIBUTE.fullmatch(name):
                self._problem(_("%(name)s is not an MJML attribute") % {"name": name})
            elif name in _URL_ATTRIBUTES and value and not _SAFE_URL.match(value):
                self._problem(
                    _("%(name)s must be a full http(s), mailto or tel address") % {"name": name}
                )
        if not closes:
            self.stack.append(tag)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs, closes=tag in ("mj-all", "mj-class", "mj-breakpoint"))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs, closes=True)

    def handle_endtag(self, tag: str) -> None:
        if not (tag == "mjml" or tag.startswith("mj-")):
            return
        if tag in ("mj-all", "mj-class", "mj-breakpoint"):
            return
        if not self.stack or self.stack[-1] != tag:
            self._problem(_("</%(tag)s> closes nothing open") % {"tag": tag})
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if data.strip() and not self._inside_text():
            parent = self.stack[-1] if self.stack else "mjml"
            self._problem(
                _("text cannot sit in <%(parent)s>: put it in mj-text") % {"parent": parent}
            )


def check(source: str) -> None:
    """MjmlError naming every place where `source` breaks MJML's rules."""
    checker = _Checker()
    checker.feed(source)
    checker.close()
    if checker.stack:
        checker._problem(_("<%(tag)s> is never closed") % {"tag": checker.stack[-1]})
    if not checker.seen_root:
        checker._problem(_("the document must be one <mjml> element"))
    if checker.problems:
        raise MjmlError(_("This MJML is not valid: %s") % "; ".join(checker.problems[:5]))


def _with_preview(source: str) -> str:
    """The campaign's preheader as the hidden preview text, unless the MJML sets one."""
    if "<mj-preview" in source:
        return source
    preview = "<mj-preview>{{ preheader }}</mj-preview>"
    if "<mj-head>" in source:
        return source.replace("<mj-head>", "<mj-head>" + preview, 1)
    return re.sub(r"(<mjml[^>]*>)", rf"\1<mj-head>{preview}</mj-head>", source, count=1)


def social_icon_origin() -> str:
    return absolute(static("campaigns/social/"))


def to_html(source: str) -> str:
    """The HTML template of an MJML document (tags kept); MjmlError if it is refused."""
    if len(source) > MAX_SOURCE:
        raise MjmlError(
            _("The design is larger than %(limit)s characters.") % {"limit": f"{MAX_SOURCE:,}"}
        )
    protected = Protected(_with_preview(source))
    check(protected.text)
    options = mrml.RenderOptions(fonts={}, social_icon_origin=social_icon_origin())
    try:
        output = mrml.to_html(protected.text, render_options=options)
    except OSError as error:
        raise MjmlError(_("This MJML cannot be compiled: %s") % error) from None
    html = protected.restore(output.content)
    if len(html) > MAX_SOURCE:
        raise MjmlError(
            _("The compiled email is larger than %(limit)s characters: make it shorter.")
            % {"limit": f"{MAX_SOURCE:,}"}
        )
    return html
