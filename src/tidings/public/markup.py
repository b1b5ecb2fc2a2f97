"""The policy text, written in Markdown, as safe HTML.

markdown-it-py parses CommonMark with raw HTML turned off (any HTML in the text shows as
text); only links to http(s), mailto: and this site's own paths become <a> elements
(`//host`, `javascript:` and `data:` stay text). nh3 then keeps only the elements and
attributes listed here, whatever the parser made. Headings start at <h2> (the page has
its own <h1>) and carry an id to link to; a line break inside a paragraph is a space.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import nh3
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify
from markdown_it import MarkdownIt
from markdown_it.token import Token

# "//host" would leave the site; "javascript:" and "data:" must never become links.
_SAFE_URL = re.compile(r"^(https?://|mailto:|/(?!/))", re.IGNORECASE)

TAGS = {
    "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "a", "code", "pre", "em",
    "strong", "blockquote", "hr", "br",
}  # fmt: skip
ATTRIBUTES = {"a": {"href"}, "ol": {"start"}, **{f"h{n}": {"id"} for n in range(2, 7)}}


def _fixed(html: str) -> Any:
    def rule(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        return html

    return rule


class _PolicyMarkdown(MarkdownIt):
    def validateLink(self, url: str) -> bool:
        return bool(_SAFE_URL.match(url))


def _markdown() -> MarkdownIt:
    md = _PolicyMarkdown("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.add_render_rule("softbreak", _fixed(" "))
    # Lists on one line each, as the policy pages have always shown them.
    for kind, tag in (("bullet_list", "ul"), ("ordered_list", "ol")):
        md.add_render_rule(f"{kind}_close", _fixed(f"</{tag}>\n"))
    md.add_render_rule("bullet_list_open", _fixed("<ul>"))
    md.add_render_rule("list_item_open", _fixed("<li>"))
    md.add_render_rule("list_item_close", _fixed("</li>"))
    return md


_MARKDOWN = _markdown()


def _headings_from_h2(tokens: list[Token]) -> None:
    for index, token in enumerate(tokens):
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{max(2, int(token.tag[1]))}"
        if token.type == "heading_open":
            token.attrSet("id", slugify(tokens[index + 1].content))
        if token.type == "ordered_list_open":
            start = token.attrGet("start")
            token.attrs = {"start": start} if start else {}


def to_html(text: str) -> SafeString:
    """The text as HTML. Headings start at <h2>: the page has its own <h1>."""
    tokens = _MARKDOWN.parse(text)
    _headings_from_h2(tokens)
    html = _MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {})
    clean = nh3.clean(
        html.rstrip("\n"),
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
    )
    return mark_safe(clean)  # noqa: S308  parsed without raw HTML, then sanitised by nh3
