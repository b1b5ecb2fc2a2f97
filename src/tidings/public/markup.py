"""A small, safe subset of Markdown for the policy text.

Headings, paragraphs, "- " lists, [label](url) links and `code`. Every piece of text is
escaped; only links to http(s), mailto: and this site's own paths become <a> elements.
"""

from __future__ import annotations

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
_ITEM = re.compile(r"^[-*]\s+(.*)$")
_INLINE = re.compile(r"\[(?P<label>[^\]\n]+)\]\((?P<url>[^()\s]+)\)|`(?P<code>[^`\n]+)`")
# "//host" would leave the site; "javascript:" and "data:" must never become links.
_SAFE_URL = re.compile(r"^(https?://|mailto:|/(?!/))", re.IGNORECASE)


def inline(text: str) -> str:
    """One line of text as escaped HTML, with its links and code spans."""
    out: list[str] = []
    pos = 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[pos : match.start()]))
        if match["code"] is not None:
            out.append(f"<code>{escape(match['code'])}</code>")
        elif _SAFE_URL.match(match["url"]):
            out.append(f'<a href="{escape(match["url"])}">{escape(match["label"])}</a>')
        else:
            out.append(escape(match[0]))
        pos = match.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def to_html(text: str) -> SafeString:
    """The text as HTML. Headings start at <h2>: the page has its own <h1>."""
    html: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []

    def close_block() -> None:
        if paragraph:
            html.append(f"<p>{inline(' '.join(paragraph))}</p>")
            paragraph.clear()
        if items:
            html.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in items) + "</ul>")
            items.clear()

    for raw in text.splitlines():
        line = raw.strip()
        heading = _HEADING.match(line)
        item = _ITEM.match(line)
        if not line:
            close_block()
        elif heading:
            close_block()
            level = max(2, len(heading[1]))
            title = heading[2]
            html.append(f'<h{level} id="{escape(slugify(title))}">{inline(title)}</h{level}>')
        elif item:
            if paragraph:
                close_block()
            items.append(item[1])
        elif items and raw[:1].isspace():
            items[-1] += " " + line  # an indented line continues the list item
        else:
            if items:
                close_block()
            paragraph.append(line)
    close_block()
    return mark_safe("\n".join(html))  # noqa: S308  every piece of text was escaped above
