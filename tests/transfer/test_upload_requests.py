"""Upload requests a hostile or unlucky client makes: a body far over the limit (refused
with 413 before it is read, over real HTTP), a form refused for CSRF (its file does not
stay), and files left by killed processes (swept once old)."""

from __future__ import annotations

import http.client
import os
import select
import time

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tidings.accounts import apikeys
from tidings.celery import app
from tidings.transfer import tasks
from tidings.transfer.models import ImportJob, transfer_path

GB = 1024**3
CHUNK = 64 * 1024
# The client gives up (and the test fails) if the server has not answered by then: the
# old code read the whole body first.
PATIENCE = 256 * 1024**2


def _files(settings) -> list[str]:  # type: ignore[no-untyped-def]
    root = settings.TRANSFER_DIR
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _send_until_answered(url: str, path: str, headers: dict[str, str], preamble: bytes):  # type: ignore[no-untyped-def]
    """Declare a 2 GB body and send it chunk by chunk, never built in memory, looking
    for the server's answer after each chunk. Returns (status, body, bytes sent)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    conn.putrequest("POST", path)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.putheader("Content-Length", str(2 * GB))
    conn.endheaders()
    assert conn.sock is not None
    conn.sock.sendall(preamble)
    sent = len(preamble)
    zeros = b"0" * CHUNK
    try:
        while sent < PATIENCE:
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if readable:
                break
            conn.sock.sendall(zeros)
            sent += CHUNK
        else:
            pytest.fail(f"no answer after {sent:,} bytes: the server is reading the body")
        response = conn.getresponse()
        return response.status, response.read().decode(), sent
    finally:
        conn.close()


@pytest.fixture
def browser(transactional_db, customer) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The Cookie header of a logged-in browser that has the import page open, and the
    CSRF token its form sends: a request the old code would have read to the end."""
    client = Client()
    client.force_login(customer)
    client.get(reverse("transfer:imports"))
    cookies = client.cookies
    names = (django_settings.SESSION_COOKIE_NAME, django_settings.CSRF_COOKIE_NAME)
    header = "; ".join(f"{name}={cookies[name].value}" for name in names)
    return header, cookies[django_settings.CSRF_COOKIE_NAME].value


def test_a_2_gb_form_upload_is_refused_with_413_before_its_body_is_read(
    live_server, browser, settings
):
    settings.TRANSFER_UPLOAD_MAX_BYTES = 1024**2
    cookie, token = browser
    boundary = "tidings-boundary"
    preamble = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n'
        f"{token}\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="huge.csv"\r\n'
        "Content-Type: text/csv\r\n\r\nemail\r\n"
    ).encode()
    status, body, sent = _send_until_answered(
        live_server.url,
        reverse("transfer:upload"),
        {"Content-Type": f"multipart/form-data; boundary={boundary}", "Cookie": cookie},
        preamble,
    )
    assert status == 413
    assert "larger than the limit of 1.0 MB" in body and "nothing was stored" in body
    assert sent < 2 * GB
    assert _files(settings) == []
    assert not ImportJob.objects.exists()


def test_a_2_gb_api_upload_is_refused_with_413_by_the_same_check(
    live_server, transactional_db, customer, settings
):
    settings.TRANSFER_UPLOAD_MAX_BYTES = 1024**2
    _, key = apikeys.create_api_key(customer.account, name="tests", by=customer)
    status, body, sent = _send_until_answered(
        live_server.url,
        "/api/v1/imports?name=huge.csv",
        {"Content-Type": "application/octet-stream", "Authorization": f"Bearer {key}"},
        b"email\n",
    )
    assert status == 413 and "larger than the limit of 1.0 MB" in body
    assert sent < 2 * GB
    assert _files(settings) == [] and not ImportJob.objects.exists()


def test_a_form_refused_for_csrf_leaves_no_file(customer, settings):
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    client.get(reverse("transfer:imports"))  # the CSRF cookie; the form's token is missing
    assert django_settings.CSRF_COOKIE_NAME in client.cookies
    content = b"email\n" + b"".join(b"p%d@example.org\n" % i for i in range(1000))
    response = client.post(
        reverse("transfer:upload"), {"file": SimpleUploadedFile("contacts.csv", content)}
    )
    assert response.status_code == 403
    assert _files(settings) == []
    assert not ImportJob.objects.exists()


def test_orphaned_upload_files_are_swept_once_old(customer, settings, on_commit_runs):
    settings.TRANSFER_ORPHAN_HOURS = 6
    folder = transfer_path("imports")
    folder.mkdir(parents=True)
    old = time.time() - 7 * 3600
    orphan, young = folder / "killed-request.upload", folder / "still-streaming.upload"
    for path in (orphan, young):
        path.write_bytes(b"email\nada@example.org\n")
    os.utime(orphan, (old, old))
    owned = ImportJob.objects.create(
        account=customer.account, original_name="a.csv", upload_file="imports/owned.upload"
    )
    transfer_path(owned.upload_file).write_bytes(b"email\n")
    os.utime(transfer_path(owned.upload_file), (old, old))

    swept = tasks.sweep_orphaned_transfer_files()

    assert swept == ["imports/killed-request.upload"]
    assert not orphan.exists() and young.exists() and transfer_path(owned.upload_file).exists()
    schedule = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "tidings.transfer.tasks.sweep_orphaned_transfer_files" in schedule
