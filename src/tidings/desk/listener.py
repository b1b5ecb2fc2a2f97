"""`tidings inbound`: the SMTP listener that takes mail to the support address
(aiosmtpd). Each message is handed to desk.inbound in the listener's thread; what the
desk cannot read is refused with a permanent error (550), one that is too large with
552 before its body is taken, so the sending server tells its sender instead of it
being lost."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

from tidings.desk import inbound

log = logging.getLogger(__name__)


def _receive(raw: bytes) -> str:
    close_old_connections()
    try:
        outcome = inbound.receive(raw)
    except inbound.Malformed as error:
        return f"550 5.6.0 Message refused: {error}"
    except Exception:
        log.exception("desk: could not take a message")
        return "451 4.3.0 Try again later"
    finally:
        # A worker thread of the listener's pool: its connection goes with the message.
        connections.close_all()
    return f"250 2.0.0 {outcome.action}"


class Handler:
    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        return await sync_to_async(_receive, thread_sensitive=False)(raw)


def controller(host: str | None = None, port: int | None = None) -> Controller:
    return Controller(
        Handler(),
        hostname=host or settings.DESK_INBOUND_HOST,
        port=port if port is not None else settings.DESK["inbound_port"],
        data_size_limit=settings.DESK["message_max_bytes"],
        decode_data=False,
    )


def serve(host: str | None = None, port: int | None = None) -> None:
    """Listen until interrupted."""
    running = controller(host, port)
    running.start()
    print(f"Support mail: listening on {running.hostname}:{running.port}", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
