"""What the desk accepts as an attachment: the type sniffed from the content (puremagic),
never the name or the sender's Content-Type, against an allowlist. SVG and HTML are not
on it (a script in them would run if a browser displayed them, osTicket #3764), and
whatever is accepted is served only as a download with `nosniff` (views)."""

from __future__ import annotations

from dataclasses import dataclass

import puremagic
from django.conf import settings
from django.utils.translation import gettext as _

from tidings.core.uploads import size_label

ALLOWED = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "text/plain",
    }
)


class Refused(ValueError):
    """An attachment the desk does not keep; the message says why."""


@dataclass(frozen=True)
class Accepted:
    filename: str
    content_type: str
    data: bytes


def _sniff(data: bytes) -> str:
    try:
        found = str(puremagic.from_string(data, mime=True))
    except (puremagic.PureError, ValueError):
        found = ""
    if found:
        return found
    # No magic number: plain text if it decodes as such and holds no control bytes.
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    if any(ord(c) < 32 and c not in "\t\r\n\f" for c in text):
        return "application/octet-stream"
    if _looks_like_markup(text):
        return "text/html"
    return "text/plain"


# What a browser's sniffer takes for HTML or XML at the start of a text (the WHATWG MIME
# Sniffing standard's patterns, after a byte order mark and white space), and SVG.
_MARKUP_TAGS = (
    "!doctype html", "html", "head", "script", "iframe", "h1", "div", "font", "table", "a",
    "style", "title", "b", "body", "br", "p", "!--", "?xml", "svg",
)  # fmt: skip


def _looks_like_markup(text: str) -> bool:
    start = text[:1024].lstrip("\ufeff \t\r\n\f").lower()
    for tag in _MARKUP_TAGS:
        if start.startswith("<" + tag):
            after = start[len(tag) + 1 : len(tag) + 2]
            if tag in ("!--", "?xml") or after in ("", " ", ">", "\t", "\n", "\r", "\f", "/"):
                return True
    return False


def clean_name(name: str) -> str:
    """A file name without a path nor control characters (it is only ever shown and
    put in a Content-Disposition)."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip().strip(".")
    return name[:200] or "attachment"


def accept(filename: str, data: bytes) -> Accepted:
    """The attachment as kept, or Refused (too large, or of a type not allowed)."""
    limit = settings.DESK["attachment_max_bytes"]
    if len(data) > limit:
        raise Refused(
            _("%(name)s is larger than %(limit)s.")
            % {"name": clean_name(filename), "limit": size_label(limit)}
        )
    content_type = _sniff(data)
    if content_type not in ALLOWED:
        raise Refused(
            _("%(name)s is of a type we do not accept (%(type)s).")
            % {"name": clean_name(filename), "type": content_type}
        )
    return Accepted(clean_name(filename), content_type, data)
