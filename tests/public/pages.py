"""Reading the HTML of a page the way a visitor's browser would, with the stdlib parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

from django.http import HttpResponse


@dataclass
class Link:
    href: str
    text: str = ""


@dataclass
class Page:
    links: list[Link] = field(default_factory=list)
    inserted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    # Addresses the browser fetches by itself: scripts, styles, images, frames.
    resources: list[str] = field(default_factory=list)
    text: str = ""


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self.open: list[tuple[str, list[str]]] = []
        self.all_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("a", "ins", "del"):
            self.open.append((tag, []))
            if tag == "a":
                self.page.links.append(Link(attributes.get("href") or ""))
        if tag in ("script", "img", "iframe") and attributes.get("src"):
            self.page.resources.append(attributes["src"] or "")
        if tag == "link" and attributes.get("href"):
            self.page.resources.append(attributes["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            return
        _, parts = self.open.pop()
        text = " ".join("".join(parts).split())
        if tag == "a":
            self.page.links[-1].text = text
        else:
            (self.page.inserted if tag == "ins" else self.page.deleted).append(text)

    def handle_data(self, data: str) -> None:
        self.all_text.append(data)
        for _, parts in self.open:
            parts.append(data)


def read(response: HttpResponse) -> Page:
    reader = _Reader()
    reader.feed(response.content.decode())
    reader.close()
    reader.page.text = " ".join("".join(reader.all_text).split())
    return reader.page
