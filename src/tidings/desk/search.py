"""The desk's search over what is encrypted at rest (P8): subjects and message bodies.

The database cannot read them, so each is cut into words when it is written, and each
word, and each of its prefixes of 3 characters or more (so "invo" finds "invoices"), is
stored as a keyed digest (`SearchToken.digest`): HMAC-SHA256, truncated to 128 bits, under
a key of its own derived (HKDF) from each field key. Without the field keys the table
says nothing of the words; it does show which rows share a word, as any equality index
does. Words are normalised first: compatibility forms, accents dropped, case folded
("Élise", "ELISE" and "elise" are one word); a word is cut at 24 characters.

A search asks for conversations holding every word typed (each as a word or a prefix),
digested under every configured key, so it goes on finding conversations while
`tidings rotate-keys` rebuilds the index under the newest key (see `rebuild`).
The rows go with their message or conversation (cascade), so erasure and retention
take them along.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable
from functools import cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from tidings.desk.models import Conversation, Message, SearchToken

WORD = re.compile(r"\w+")
# Words are cut here, when indexed and when searched for alike.
MAX_WORD = 24
# Prefixes from this length on are indexed too.
MIN_PREFIX = 3
# Single characters are not indexed (noise, and a digest for each would say little).
MIN_WORD = 2
# The words of one search that count; more are ignored.
MAX_QUERY_WORDS = 8
KEY_INFO = b"tidings.desk.search"
BATCH = 1000


@cache
def _derived(keys: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(
        HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_INFO).derive(k.encode())
        for k in keys
    )


def keys() -> tuple[bytes, ...]:
    """The search keys, newest first: one per field key (settings.FIELD_ENCRYPTION_KEYS)."""
    return _derived(tuple(settings.FIELD_ENCRYPTION_KEYS))


def normalise(text: str) -> list[str]:
    """The words of `text`: compatibility forms, accents dropped, case folded, cut at
    MAX_WORD characters; words of one character left out."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return [w[:MAX_WORD] for w in WORD.findall(plain) if len(w) >= MIN_WORD]


def terms(text: str) -> set[str]:
    """What is indexed for `text`: each word and each of its prefixes of MIN_PREFIX
    characters or more."""
    found: set[str] = set()
    for word in normalise(text):
        found.add(word)
        found.update(word[:n] for n in range(MIN_PREFIX, len(word)))
    return found


def digest(key: bytes, term: str) -> str:
    return hmac.new(key, term.encode(), hashlib.sha256).hexdigest()[:32]


def _rows(conversation_id: int, message_id: int | None, text: str, key: bytes) -> list[SearchToken]:
    return [
        SearchToken(conversation_id=conversation_id, message_id=message_id, digest=digest(key, t))
        for t in sorted(terms(text))
    ]


def index_message(message: Message) -> None:
    """Index a message's body (desk.services.add_message calls this as it writes one)."""
    SearchToken.objects.bulk_create(
        _rows(message.conversation_id, message.pk, message.body, keys()[0]), batch_size=BATCH
    )


def index_subject(conversation: Conversation) -> None:
    SearchToken.objects.filter(conversation=conversation, message__isnull=True).delete()
    SearchToken.objects.bulk_create(
        _rows(conversation.pk, None, conversation.subject, keys()[0]), batch_size=BATCH
    )


def reindex(conversation: Conversation) -> None:
    """The conversation's index rebuilt under the newest key, in one transaction."""
    key = keys()[0]
    with transaction.atomic():
        SearchToken.objects.filter(conversation=conversation).delete()
        rows = _rows(conversation.pk, None, conversation.subject, key)
        for pk, body in conversation.messages.values_list("pk", "body"):
            rows += _rows(conversation.pk, pk, body, key)
        SearchToken.objects.bulk_create(rows, batch_size=BATCH)


def rebuild() -> str:
    """Every conversation's index rebuilt under the newest key: `tidings rotate-keys`
    runs this after re-encrypting (core.fields.after_rotation). Searches keep working
    meanwhile (they ask under every key); once it is done the old key may be dropped."""
    done = 0
    for conversation in Conversation.objects.order_by("pk").iterator(chunk_size=100):
        reindex(conversation)
        done += 1
    return f"{SearchToken._meta.label}: {done} conversations indexed again"


def matching(query: str, *, with_notes: bool) -> Q | None:
    """A filter of conversations holding every word of `query` in their subject or a
    message (staff's internal notes only `with_notes`), or None when the query has no
    word to look for."""
    words = list(dict.fromkeys(normalise(query)))[:MAX_QUERY_WORDS]
    if not words:
        return None
    found = Q()
    for word in words:
        rows = SearchToken.objects.filter(digest__in=_digests_of(word))
        if not with_notes:
            rows = rows.exclude(message__direction=Message.Direction.NOTE)
        found &= Q(pk__in=rows.values("conversation_id"))
    return found


def _digests_of(word: str) -> Iterable[str]:
    return [digest(key, word) for key in keys()]
