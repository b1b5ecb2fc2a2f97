"""Signed checkpoints of the audit log's head, kept outside the database (P7).

The hash chain shows an edited entry, but not entries cut from its end, nor a log
emptied and begun again: a chain can be cut anywhere and still hold. A checkpoint
records where the chain stood (the last entry's id and hash, and where it begins after
expiries), signed with Ed25519 by a key from the settings (TIDINGS_AUDIT_SIGNING_KEY, or
`audit_signing_key` in the data directory). One is written every day to
AUDIT_CHECKPOINT_DIR and mailed to the privacy contact, so a copy is where whoever
controls the database cannot reach it; `tidings audit verify` checks the log against
every checkpoint it is given. docs/operator.md, "The audit log".
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from tidings.core.mail import send_templated
from tidings.staff.models import GENESIS_HASH, AuditEvent, AuditExpiry

VERSION = 1


class CheckpointError(Exception):
    """A checkpoint file that cannot be trusted: unreadable, or not signed by our key."""


@dataclass(frozen=True)
class Checkpoint:
    at: str  # ISO 8601, UTC
    head_pk: int  # 0: the log held no entry
    head_hash: str
    head_at: str  # when the head entry was written ("" with no entry)
    expired_through_pk: int  # where the log began: entries up to here had expired
    expired_through_hash: str
    public_key: str  # base64 Ed25519 public key that signed it
    signature: str = ""
    version: int = VERSION

    def payload(self) -> bytes:
        fields = asdict(self)
        del fields["signature"]
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    @property
    def when(self) -> datetime:
        return datetime.fromisoformat(self.at)

    def label(self) -> str:
        return f"the checkpoint of {self.when:%Y-%m-%d %H:%M:%S} UTC"


def _private_key() -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(settings.AUDIT_SIGNING_KEY, validate=True)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(
            "TIDINGS_AUDIT_SIGNING_KEY must be 32 random bytes in base64 "
            "(e.g. `openssl rand -base64 32`)"
        ) from None


def _public_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def public_key() -> str:
    """The public half of the signing key, to give to whoever checks the mailed copies."""
    return _public_text(_private_key().public_key())


def current() -> Checkpoint:
    """Where the chain stands now, signed."""
    expiry = AuditExpiry.objects.order_by("-through_pk").first()
    head = AuditEvent.objects.order_by("-pk").only("pk", "hash", "at").first()
    key = _private_key()
    unsigned = Checkpoint(
        at=timezone.now().astimezone(UTC).isoformat(),
        head_pk=head.pk if head else (expiry.through_pk if expiry else 0),
        head_hash=head.hash if head else (expiry.through_hash if expiry else GENESIS_HASH),
        head_at=head.at.astimezone(UTC).isoformat() if head else "",
        expired_through_pk=expiry.through_pk if expiry else 0,
        expired_through_hash=expiry.through_hash if expiry else GENESIS_HASH,
        public_key=_public_text(key.public_key()),
    )
    return replace(unsigned, signature=base64.b64encode(key.sign(unsigned.payload())).decode())


def to_json(checkpoint: Checkpoint) -> str:
    return json.dumps(asdict(checkpoint), indent=2, sort_keys=True) + "\n"


def write(checkpoint: Checkpoint, directory: Path | None = None) -> Path:
    """Save one checkpoint as its own file (written whole, then renamed into place)."""
    directory = Path(directory or settings.AUDIT_CHECKPOINT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{checkpoint.when:%Y%m%dT%H%M%S%fZ}-{checkpoint.head_pk}.json"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint-")
    with os.fdopen(fd, "w") as handle:
        handle.write(to_json(checkpoint))
    os.chmod(tmp, 0o644)
    path = directory / name
    os.replace(tmp, path)
    return path


def load(path: Path) -> Checkpoint:
    """Read one checkpoint and check that our key signed it."""
    try:
        data: dict[str, Any] = json.loads(Path(path).read_text())
        checkpoint = Checkpoint(**data)
        signature = base64.b64decode(checkpoint.signature, validate=True)
        datetime.fromisoformat(checkpoint.at)
    except (OSError, ValueError, TypeError, binascii.Error) as error:
        raise CheckpointError(f"checkpoint {path} cannot be read: {error}") from None
    ours = _private_key().public_key()
    if checkpoint.public_key != _public_text(ours):
        raise CheckpointError(f"checkpoint {path} was signed by another key")
    try:
        ours.verify(signature, checkpoint.payload())
    except InvalidSignature:
        raise CheckpointError(
            f"checkpoint {path}: its signature does not match its content"
        ) from None
    return checkpoint


def load_all(extra: Iterable[Path] = ()) -> list[Checkpoint]:
    """Every checkpoint in the directory, and `extra` ones (copies kept from the mail)."""
    directory = Path(settings.AUDIT_CHECKPOINT_DIR)
    paths = sorted(directory.glob("*.json")) if directory.is_dir() else []
    return [load(p) for p in [*paths, *map(Path, extra)]]


def checkpoint_and_mail() -> Path:
    """The daily job: write a checkpoint and mail a copy to the privacy contact, through
    the one outbound pipeline (posted in this transaction, sent after the commit)."""
    checkpoint = current()
    path = write(checkpoint)
    with transaction.atomic():
        send_templated(
            "staff/mail/audit_checkpoint",
            [settings.OPERATOR["privacy_email"]],
            {"checkpoint": checkpoint, "document": to_json(checkpoint), "filename": path.name},
        )
    return path
