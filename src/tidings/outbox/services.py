"""Storing a message in the local outbox, exactly as it would have gone over SMTP."""

from __future__ import annotations

import email
import email.policy

from tidings.outbox.models import OutboxMessage


def store(*, sender: str, recipient: str, data: bytes) -> OutboxMessage:
    """Keep the message's bytes as they are (headers are not re-encoded) and, for the
    staff's list, its subject and text."""
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    text = parsed.get_body(("plain",))
    return OutboxMessage.objects.create(
        from_email=sender,
        recipients=recipient,
        subject=str(parsed["Subject"] or "")[:998],
        body=text.get_content() if text is not None else "",
        raw=data.decode("utf-8", errors="replace"),
    )
