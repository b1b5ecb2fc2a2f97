"""Encrypted model fields (P8): sensitive values are stored as Fernet tokens.

Keys come from settings.FIELD_ENCRYPTION_KEYS, newest first. MultiFernet decrypts with any
of them and encrypts with the first, so rotation is: prepend a new key, run
`tidings rotate-keys`, then drop the old key.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("TIDINGS_FIELD_KEYS holds no key")
    return MultiFernet([Fernet(k.encode()) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


class EncryptedTextField(models.TextField):
    """A text field encrypted at rest. It cannot be searched or indexed, by design."""

    encrypted = True

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return fernet().encrypt(str(value).encode()).decode()

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        try:
            return fernet().decrypt(value.encode()).decode()
        except InvalidToken:
            raise ImproperlyConfigured(
                "An encrypted field cannot be read with the configured keys "
                "(TIDINGS_FIELD_KEYS or data/field_keys)"
            ) from None


class EncryptedBinaryField(models.BinaryField):
    """Bytes encrypted at rest (the support desk's attachments): a Fernet token, read
    back with any configured key, so `tidings rotate-keys` covers it like the text."""

    encrypted = True

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None:
            return value
        return fernet().encrypt(bytes(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> bytes | None:
        if value is None:
            return value
        try:
            return fernet().decrypt(bytes(value))
        except InvalidToken:
            raise ImproperlyConfigured(
                "An encrypted field cannot be read with the configured keys "
                "(TIDINGS_FIELD_KEYS or data/field_keys)"
            ) from None


# What `tidings rotate-keys` runs after re-encrypting: the indexes keyed by the field
# keys (the desk's search), rebuilt under the newest key. Each returns a line to print.
_after_rotation: list[Callable[[], str]] = []


def after_rotation(rebuild: Callable[[], str]) -> Callable[[], str]:
    if rebuild not in _after_rotation:
        _after_rotation.append(rebuild)
    return rebuild


def rotation_followers() -> list[Callable[[], str]]:
    return list(_after_rotation)


def encrypted_fields(model: type[models.Model]) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if getattr(f, "encrypted", False)]
