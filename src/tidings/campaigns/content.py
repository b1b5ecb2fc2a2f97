"""Turning what a customer writes into HTML and text templates, keeping the Jinja tags.

Markdown conversion, HTML sanitising and the HTML-to-text conversion must not touch the
template tags (`{{ contact.first_name | default("there") }}` is not Markdown, and its
quotes and pipes must survive). So each tag is swapped for an inert token first, the
document is converted, and the tags are put back verbatim: the result is again a
template, made once per campaign, not once per contact.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from html.parser import HTMLParser

import lxml.etree
import lxml.html
import nh3
from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_element import HtmlElement
from markdown_it import MarkdownIt

from tidings.campaigns.sandbox import TemplateError

# A raw block as a whole, then expressions, statements and comments, skipping over
# quoted strings so that `{{ "}}" }}` is one tag.
_JINJA_TAG = re.compile(
    r"""\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}
      | \{\{(?:[^"'}]|"[^"]*"|'[^']*'|\}(?!\}))*\}\}
      | \{%(?:[^"'%]|"[^"]*"|'[^']*'|%(?!\}))*%\}
      | \{\#.*?\#\}""",
    re.S | re.X,
)


# The body the editor starts a new campaign with. Its words and its link are not meant
# to reach anyone: a message still showing one of `PLACEHOLDERS` cannot be sent
# (sending.checklist), whatever was changed around it.
STARTER_BODY = """Hello {{ contact.first_name | default("there") }},

Write your news here. **Bold**, *italic*, [links](https://example.com) and lists:

- one thing
- another

See you soon!
"""
# Text of the starter body and of the layouts' sample content, as a message shows it.
PLACEHOLDERS = (
    "Write your news here",
    "this is how your campaigns look in this layout",
)
# The starter's link, to a domain reserved for examples (RFC 2606).
_PLACEHOLDER_LINK = re.compile(r"""href\s*=\s*["']https?://example\.com/?["']""", re.I)


def placeholder_left(html: str, text: str) -> str | None:
    """The starter or sample text a rendered message still shows, if any."""
    flat = " ".join(text.split()).lower()
    for words in PLACEHOLDERS:
        if words.lower() in flat:
            return words
    if _PLACEHOLDER_LINK.search(html):
        return "https://example.com"
    return None


class Protected:
    """`source` with its template tags replaced by tokens made of letters and digits."""

    def __init__(self, source: str) -> None:
        self.nonce = "tdg" + secrets.token_hex(4)
        self.tags: list[str] = []
        self.text = _JINJA_TAG.sub(self._token_for, source)
        self.token = re.compile(rf"{self.nonce}x(\d+)x")

    def _token_for(self, match: re.Match[str]) -> str:
        self.tags.append(match.group(0))
        return f"{self.nonce}x{len(self.tags) - 1}x"

    def tokens_in(self, text: str) -> list[int]:
        return [int(m.group(1)) for m in self.token.finditer(text)]

    def restore(self, text: str) -> str:
        return self.token.sub(lambda m: self.tags[int(m.group(1))], text)

    def unwrap_block_paragraphs(self, html: str) -> str:
        """`<p>{% if x %}</p>` (a statement alone on a Markdown line) becomes the bare
        statement, so a false condition leaves no empty paragraph behind."""

        def unwrap(match: re.Match[str]) -> str:
            token = match.group(1)
            index = int(self.token.fullmatch(token).group(1))  # type: ignore[union-attr]
            return token if self.tags[index].startswith("{%") else match.group(0)

        return re.sub(rf"<p>\s*({self.nonce}x\d+x)\s*</p>", unwrap, html)


def _convert(source: str, convert: Callable[[str], str], *, what: str) -> str:
    """Apply `convert` to `source` with its template tags protected; a tag the
    conversion had to drop (inside a removed attribute) is reported with its line."""
    protected = Protected(source)
    converted = convert(protected.text)
    kept = set(protected.tokens_in(converted))
    for index, tag in enumerate(protected.tags):
        if index not in kept:
            line = source[: source.find(tag)].count("\n") + 1
            raise TemplateError(
                f"the tag {tag[:60]} sits where {what} cannot keep it (inside a removed "
                "attribute or element); move it into the text",
                line=line,
            )
    return protected.restore(converted)


# What rich text and Markdown may contain once sanitised: text formatting, links,
# images, lists, quotes, tables. No scripts, styles, forms or event handlers.
SAFE_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3",
    "h4", "hr", "i", "img", "li", "ol", "p", "pre", "s", "small", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
SAFE_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "p": {"align"},
    "*": {"dir", "lang"},
}
URL_SCHEMES = {"http", "https", "mailto", "tel"}


def sanitise(html: str) -> str:
    """Safe HTML from any HTML (nh3: an allow-list of tags, attributes and URL schemes),
    template tags kept."""
    return _convert(
        html,
        lambda text: nh3.clean(
            text,
            tags=SAFE_TAGS,
            attributes=SAFE_ATTRIBUTES,
            url_schemes=URL_SCHEMES,
            link_rel="noopener noreferrer",
        ),
        what="rich text",
    )


_MARKDOWN = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
_MARKDOWN.enable(["table", "strikethrough"])


def markdown_to_html(source: str) -> str:
    """Markdown (CommonMark with tables and strikethrough) to sanitised HTML; HTML
    written inside the Markdown is sanitised like rich text."""
    protected = Protected(source)
    html = protected.unwrap_block_paragraphs(_MARKDOWN.render(protected.text))
    return sanitise(protected.restore(html))


# The text part: inscriptis lays the HTML out as text (blocks, lists, tables, hidden
# elements left out) and writes each link as [text](url) so the address stays readable;
# a link to "#" is just its text. Every block is a paragraph of its own (blank lines
# around it; `tidy_text` keeps one), as mail clients show a text part best.
_TEXT_CSS = CSS_PROFILES["strict"] | {
    tag: HtmlElement(
        tag,
        display=Display.block,
        margin_before=1,
        margin_after=1,
    )
    for tag in (
        "div", "address", "article", "aside", "footer", "header", "main", "nav", "section",
        "center", "figcaption", "blockquote", "pre",
    )
}  # fmt: skip
_TEXT_CONFIG = ParserConfig(css=_TEXT_CSS, display_links=True, display_anchors=False)


_TABLE_PARTS = ("table", "thead", "tbody", "tfoot", "tr", "td", "th")
_BLOCKS_IN_CELLS = ".//td//*[self::p or self::div or self::table or self::h1 or self::h2]"


def _text_of(html: str) -> str:
    """A layout table (role="presentation", or one whose cells hold paragraphs or
    tables) is read as the blocks it lays out; a table of data stays a grid."""
    if not html.strip():
        return ""
    try:
        tree = lxml.html.document_fromstring(html)
    except lxml.etree.ParserError:
        return ""  # nothing but a comment or a doctype: no text
    layout = [
        table
        for table in tree.iter("table")
        if table.get("role") == "presentation" or table.xpath(_BLOCKS_IN_CELLS)
    ]
    parts = [
        part
        for table in layout
        for part in table.iter(*_TABLE_PARTS)
        if part is table or (part.tag != "table" and next(part.iterancestors("table")) is table)
    ]
    for part in parts:
        part.tag = "div"
    return Inscriptis(tree, _TEXT_CONFIG).get_text()


_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_INTERNAL_LINK = re.compile(r"\[([^\]\n]*)\]\(#[^)\s]*\)")


def tidy_text(text: str) -> str:
    """At most one blank line in a row, no trailing spaces, and a link to "#" (a
    placeholder) is just its text."""
    text = _INTERNAL_LINK.sub(r"\1", text)
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip() + "\n"


def html_to_text(html: str) -> str:
    return tidy_text(_text_of(html))


def html_to_text_template(source: str) -> str:
    """The plain-text template of an HTML template, its tags kept. A tag inside an
    attribute the text leaves out (`style`, `class`) is left out too; the caller
    compiles the result and falls back to converting each rendered message if that
    broke a block."""
    protected = Protected(source)
    return protected.restore(_text_of(protected.text))


class _TagPlaces(HTMLParser):
    """Where each token of a protected document sits: in text ("data"), in an attribute
    value ("attr"), in a title or textarea ("rcdata"), or anywhere else ("other": a
    style or script, a comment, an attribute name, a doctype)."""

    def __init__(self, protected: Protected) -> None:
        super().__init__(convert_charrefs=True)
        self.protected = protected
        self.places: dict[int, str] = {}
        self.raw = 0
        self.rcdata = 0

    def _mark(self, text: str | None, place: str) -> None:
        for index in self.protected.tokens_in(text or ""):
            # A token seen twice (impossible unless parsing went wrong) counts as "other".
            self.places[index] = "other" if index in self.places else place

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            self._mark(name, "other")
            self._mark(value, "attr")
        if tag in ("script", "style"):
            self.raw += 1
        elif tag in ("title", "textarea"):
            self.rcdata += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            self._mark(name, "other")
            self._mark(value, "attr")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.raw = max(self.raw - 1, 0)
        elif tag in ("title", "textarea"):
            self.rcdata = max(self.rcdata - 1, 0)
        self._mark(tag, "other")

    def handle_data(self, data: str) -> None:
        self._mark(data, "other" if self.raw else "rcdata" if self.rcdata else "data")

    def handle_comment(self, data: str) -> None:
        self._mark(data, "other")

    def handle_decl(self, decl: str) -> None:
        self._mark(decl, "other")

    def handle_pi(self, data: str) -> None:
        self._mark(data, "other")

    def unknown_decl(self, data: str) -> None:
        self._mark(data, "other")


def inline_template(source: str, inline: Callable[[str], str]) -> str | None:
    """`source` (an HTML template) with its CSS inlined once, its tags kept; None when a
    tag sits where inlining could move or mangle it (the caller then inlines each
    rendered message).

    Tags in text become HTML comments for the inliner, which an HTML parser leaves in
    place even inside tables (text there would be moved out); tags in attribute values
    and titles stay plain tokens. Whatever the inliner returns must hold every tag once,
    in order."""
    protected = Protected(source)
    finder = _TagPlaces(protected)
    finder.feed(protected.text)
    finder.close()
    places = finder.places
    count = len(protected.tags)
    if len(places) != count or any(place == "other" for place in places.values()):
        return None
    token = protected.token

    def as_comment(match: re.Match[str]) -> str:
        in_text = places[int(match.group(1))] == "data"
        return f"<!--{match.group(0)}-->" if in_text else match.group(0)

    inlined = inline(token.sub(as_comment, protected.text))
    inlined = re.sub(rf"<!--({protected.nonce}x\d+x)-->", r"\1", inlined)
    if protected.tokens_in(inlined) != list(range(count)):
        return None
    return protected.restore(inlined)
