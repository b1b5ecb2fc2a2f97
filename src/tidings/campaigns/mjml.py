"""MJML, the visual editor's document, checked and compiled to HTML on the server.

The compiler is mrml (a Rust implementation of MJML 4). mrml accepts much that MJML's own
"strict" validation refuses (an unknown element or attribute, text straight in a
section, "12 pixels" as a size), so the source is first checked here, element by
element, against MJML 4's rules: what may contain what, which attributes each element
takes, and the type of sizes, colours and choices. Invalid MJML is refused at save with
every problem named by its line (the first five). What loads from elsewhere is shut:
no `mj-include` (files), no `mj-font` and no font links (P29: no third-party request),
and social icons come from Tidings's own static files instead of mailjet.com.

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

# The attributes each element takes (MJML 4's components' allowed attributes), as MJML's
# strict validation checks them: an attribute an element does not know is refused, not
# silently dropped. Every element also takes css-class and mj-class; inside
# <mj-attributes> any attribute may be set as a default.
_PAD = ("padding", "padding-top", "padding-bottom", "padding-left", "padding-right")
_BORDER = ("border", "border-top", "border-bottom", "border-left", "border-right", "border-radius")
_FONT = (
    "color", "font-family", "font-size", "font-style", "font-weight", "line-height",
    "letter-spacing", "text-decoration", "text-transform",
)  # fmt: skip
_LINK = ("href", "rel", "target", "title", "name")
_BACKGROUND = (
    "background-color", "background-url", "background-repeat", "background-size",
    "background-position", "background-position-x", "background-position-y",
)  # fmt: skip
_SECTION = (*_BACKGROUND, *_BORDER, *_PAD, "direction", "full-width", "text-align", "gap")
# fmt: off
ATTRIBUTES: dict[str, set[str]] = {
    "mjml": {"lang", "dir", "owa"},
    "mj-head": set(),
    "mj-breakpoint": {"width"},
    "mj-style": {"inline"},
    "mj-title": set(),
    "mj-preview": set(),
    "mj-body": {"width", "background-color"},
    "mj-wrapper": set(_SECTION),
    "mj-section": set(_SECTION),
    "mj-group": {"width", "vertical-align", "background-color", "direction"},
    "mj-column": {
        "background-color",
        "inner-background-color",
        *_BORDER,
        "inner-border",
        "inner-border-top",
        "inner-border-bottom",
        "inner-border-left",
        "inner-border-right",
        "inner-border-radius",
        "width",
        "vertical-align",
        *_PAD,
        "direction",
    },
    "mj-hero": {
        "mode",
        "height",
        "background-url",
        "background-width",
        "background-height",
        "background-position",
        "border-radius",
        "container-background-color",
        "inner-background-color",
        "inner-padding",
        "inner-padding-top",
        "inner-padding-bottom",
        "inner-padding-left",
        "inner-padding-right",
        *_PAD,
        "background-color",
        "vertical-align",
        "width",
    },
    "mj-text": {*_FONT, "height", "align", "container-background-color", *_PAD},
    "mj-button": {
        *_FONT,
        *_LINK,
        *_BORDER,
        "align",
        "background-color",
        "container-background-color",
        "height",
        "inner-padding",
        *_PAD,
        "text-align",
        "vertical-align",
        "width",
    },
    "mj-image": {
        *_LINK,
        *_BORDER,
        "alt",
        "src",
        "srcset",
        "sizes",
        "align",
        "container-background-color",
        "fluid-on-mobile",
        *_PAD,
        "width",
        "height",
        "max-height",
        "font-size",
        "usemap",
    },
    "mj-divider": {
        "border-color",
        "border-style",
        "border-width",
        "container-background-color",
        *_PAD,
        "width",
        "align",
    },
    "mj-spacer": {*_BORDER, "container-background-color", *_PAD, "height"},
    "mj-social": {
        *_FONT,
        "align",
        "border-radius",
        "container-background-color",
        "icon-size",
        "icon-height",
        "icon-padding",
        "inner-padding",
        "mode",
        *_PAD,
        "table-layout",
        "text-padding",
    },
    "mj-social-element": {
        *_FONT,
        *_LINK,
        "align",
        "icon-position",
        "background-color",
        "border-radius",
        "icon-size",
        "icon-height",
        "icon-padding",
        *_PAD,
        "text-padding",
        "src",
        "srcset",
        "sizes",
        "alt",
        "vertical-align",
    },
    "mj-navbar": {
        "align",
        "base-url",
        "hamburger",
        "ico-align",
        "ico-open",
        "ico-close",
        "ico-color",
        "ico-font-size",
        "ico-font-family",
        "ico-text-transform",
        "ico-padding",
        "ico-padding-top",
        "ico-padding-bottom",
        "ico-padding-left",
        "ico-padding-right",
        "ico-text-decoration",
        "ico-line-height",
    },
    "mj-navbar-link": {*_FONT, *_LINK, *_PAD},
    "mj-table": {
        *_FONT,
        "align",
        "border",
        "cellpadding",
        "cellspacing",
        "container-background-color",
        *_PAD,
        "role",
        "table-layout",
        "width",
    },
    "mj-raw": {"position"},
}
# fmt: on
_EVERYWHERE = {"css-class", "mj-class"}
# Values MJML checks by type: sizes in px or %, colours, and a few choices.
_SIZE = re.compile(r"\d+(\.\d+)?(px|%)?")
_SIZES = re.compile(r"(\d+(\.\d+)?(px|%)?)(\s+\d+(\.\d+)?(px|%)?){0,3}")
_COLOUR = re.compile(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?|[a-zA-Z]+|rgba?\([\d\s.,%]+\)")
_CHOICES: dict[str, set[str]] = {
    "align": {"left", "center", "right", "justify"},
    "text-align": {"left", "center", "right", "justify"},
    "vertical-align": {"top", "middle", "bottom"},
    "direction": {"ltr", "rtl"},
    "full-width": {"full-width", "false"},
    "fluid-on-mobile": {"true", "false"},
    "border-style": {"solid", "dashed", "dotted", "double", "groove", "ridge", "none"},
}


# What a template tag stands as while the MJML is checked (its value is checked when
# the campaign is rendered).
_TAG_TOKEN = re.compile(r"tdg[0-9a-f]{8}x\d+x")


def _value_problem(name: str, value: str) -> str | None:
    """Why `value` is not a valid `name`, by MJML's types; None when it is, or when the
    value is a template tag (checked when the campaign is rendered)."""
    if not value or _TAG_TOKEN.search(value):
        return None
    if name in _CHOICES and value.strip() not in _CHOICES[name]:
        return _("%(name)s must be one of %(choices)s, not “%(value)s”") % {
            "name": name,
            "choices": ", ".join(sorted(_CHOICES[name])),
            "value": value,
        }
    sizes = name in ("padding", "inner-padding", "icon-padding", "text-padding")
    single = name in (
        "width", "height", "font-size", "icon-size", "border-width", "border-radius",
        "letter-spacing", "max-height",
    ) or name.startswith("padding-")  # fmt: skip
    if (sizes and not _SIZES.fullmatch(value.strip())) or (
        single
        and not (_SIZES if name == "border-radius" else _SIZE).fullmatch(value.strip())
        and not (name == "letter-spacing" and re.fullmatch(r"-?\d+(\.\d+)?(px|em)", value))
        and value != "auto"
    ):
        return _("%(name)s must be a size in px or %%, not “%(value)s”") % {
            "name": name,
            "value": value,
        }
    if name.endswith("color") and not _COLOUR.fullmatch(value.strip()):
        return _("%(name)s must be a colour (#1f5fa8), not “%(value)s”") % {
            "name": name,
            "value": value,
        }
    return None


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
        defaults = "mj-attributes" in self.stack
        for name, value in attrs:
            if not _ATTRIBUTE.fullmatch(name):
                self._problem(_("%(name)s is not an MJML attribute") % {"name": name})
            elif not defaults and name not in ATTRIBUTES.get(tag, set()) | _EVERYWHERE:
                self._problem(_("<%(tag)s> has no attribute %(name)s") % {"tag": tag, "name": name})
            elif (problem := _value_problem(name, value or "")) is not None:
                self._problem(problem)
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
    """The campaign's preheader as the hidden preview text and its subject as the
    document's title (what a screen reader announces first), unless the MJML sets them."""
    head = ""
    if "<mj-title" not in source:
        head += "<mj-title>{{ subject }}</mj-title>"
    if "<mj-preview" not in source:
        head += "<mj-preview>{{ preheader }}</mj-preview>"
    if not head:
        return source
    if "<mj-head>" in source:
        return source.replace("<mj-head>", "<mj-head>" + head, 1)
    return re.sub(r"(<mjml[^>]*>)", rf"\1<mj-head>{head}</mj-head>", source, count=1)


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
