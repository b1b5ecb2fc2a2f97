"""The links a big campaign's readers hit at once are the first patterns Django tries:
it walks the URL patterns in order, and behind about a hundred others the open pixel
spent a third of a millisecond finding its view (bench/README.md, web)."""

from __future__ import annotations

from collections.abc import Iterator

from django.urls import URLPattern, URLResolver, get_resolver

HOT = {
    "sending:open",
    "sending:click",
    "sending:unsubscribe",
    "audience:subscribe",
    "audience:preferences",
    "audience:unsubscribe",
}


def _names(patterns: list, namespace: str = "") -> Iterator[str]:  # type: ignore[type-arg]
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            yield f"{namespace}{pattern.name}"


def test_the_public_links_of_a_campaign_are_tried_first():
    names = list(_names(get_resolver().url_patterns))
    assert set(names) >= HOT
    # Of about 300: after the sending app's own twenty, before every other app's.
    assert len(names) > 250
    assert max(names.index(name) for name in HOT) < 30, names[:30]
