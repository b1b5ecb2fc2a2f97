"""Encryption at rest with key rotation, and production security settings (P8, P9)."""

import io
import json
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from tidings.accounts.models import User
from tidings.core.fields import _fernet


def raw_column(user: User, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM accounts_user WHERE id = %s", [user.pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.mark.promise("P8")
def test_phone_and_address_are_encrypted_at_rest(customer):
    customer.postal_address = "12 Analytical Row, London"
    customer.save()
    for column, clear in (("phone", "+44 20 7946 0018"), ("postal_address", "Analytical Row")):
        stored = raw_column(customer, column)
        assert clear not in stored
        assert stored.startswith("gAAAA")  # a Fernet token
    customer.refresh_from_db()
    assert customer.phone == "+44 20 7946 0018"


@pytest.mark.promise("P8")
def test_rotating_keys_reencrypts_with_the_new_key_and_old_key_can_be_dropped(customer, settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    before = raw_column(customer, "phone")
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    _fernet.cache_clear()
    call_command("rotatekeys", stdout=io.StringIO())
    after = raw_column(customer, "phone")
    assert after != before
    assert Fernet(new_key.encode()).decrypt(after.encode()).decode() == "+44 20 7946 0018"
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    _fernet.cache_clear()
    customer.refresh_from_db()
    assert customer.phone == "+44 20 7946 0018"
    _fernet.cache_clear()


def _settings_with(env: dict[str, str], tmp_path) -> dict:  # type: ignore[no-untyped-def]
    code = (
        "import json, tidings.settings as s; print(json.dumps({k: getattr(s, k) for k in ("
        "'SESSION_COOKIE_SECURE','CSRF_COOKIE_SECURE','SECURE_HSTS_SECONDS','SECURE_SSL_REDIRECT',"
        "'SESSION_COOKIE_HTTPONLY','PASSWORD_HASHERS','AXES_FAILURE_LIMIT')}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TIDINGS_", "DATABASE_URL"))}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "TIDINGS_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.promise("P8", "P9")
def test_production_settings_make_cookies_secure_and_send_hsts(tmp_path):
    prod = _settings_with({"TIDINGS_SECURE": "true"}, tmp_path)
    assert prod["SESSION_COOKIE_SECURE"] and prod["CSRF_COOKIE_SECURE"]
    assert prod["SECURE_SSL_REDIRECT"] and prod["SECURE_HSTS_SECONDS"] >= 31536000
    assert prod["SESSION_COOKIE_HTTPONLY"]
    assert prod["PASSWORD_HASHERS"][0].endswith("Argon2PasswordHasher")


def test_a_bad_setting_stops_the_start_with_its_name(tmp_path):
    with pytest.raises(subprocess.CalledProcessError) as error:
        _settings_with({"TIDINGS_SECURE": "maybe"}, tmp_path)
    assert "TIDINGS_SECURE" in error.value.stderr


def test_secrets_are_generated_in_the_data_dir_not_fixed(tmp_path):
    _settings_with({}, tmp_path)
    first = (tmp_path / "secret_key").read_text()
    assert len(first) > 40 and oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"
    _settings_with({}, tmp_path)
    assert (tmp_path / "secret_key").read_text() == first
