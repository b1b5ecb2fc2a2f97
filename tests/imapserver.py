"""A real IMAP server for the tests: Debian's Dovecot (`dovecot-imapd`, which ./dev test
installs), started unprivileged with a throwaway configuration: passwd-file login, a
maildir in a temporary directory, a free loopback port, no TLS (loopback only) or TLS
with a test certificate made here.

Run as root (a container), Dovecot's login process refuses to run as root: the whole
server then runs as `nobody`, in a directory of its own under /tmp (pytest's tmp_path
lies under a directory only root may enter)."""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.certificates import self_signed

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "support", "s3cret-imap"

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain
# A wrong password is answered at once (the default waits 2 seconds).
auth_failure_delay = 0
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{dir}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ssl_port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Dovecot:
    """`tls`: with a test certificate (`self.ca_file`), STARTTLS on `port` and implicit
    TLS on `ssl_port`; without, plain IMAP on loopback only."""

    def __init__(self, *, tls: bool = False) -> None:
        if shutil.which(DOVECOT) is None:
            pytest.fail("dovecot is missing: `apt-get install dovecot-imapd` (./dev test does it)")
        root = os.geteuid() == 0
        account = pwd.getpwnam("nobody") if root else pwd.getpwuid(os.geteuid())
        group = grp.getgrgid(account.pw_gid)
        self.dir = Path(tempfile.mkdtemp(prefix="tidings-dovecot-"))
        self.host, self.port = "127.0.0.1", _free_port()
        self.ssl_port = _free_port() if tls else 0
        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir()
        self.ca_file = self.dir / "cert.pem"
        if tls:
            self_signed(self.dir, "127.0.0.1", cert_file="cert.pem", key_file="key.pem")
            ssl = f"ssl = yes\nssl_cert = <{self.dir}/cert.pem\nssl_key = <{self.dir}/key.pem"
        else:
            ssl = "ssl = no"
        (self.dir / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        (self.dir / "dovecot.conf").write_text(
            CONFIG.format(
                dir=self.dir,
                user=account.pw_name,
                group=group.gr_name,
                uid=account.pw_uid,
                gid=account.pw_gid,
                port=self.port,
                ssl_port=self.ssl_port,
                ssl=ssl,
            )
        )
        if root:
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")],
            user=account.pw_uid if root else None,
            group=account.pw_gid if root else None,
            extra_groups=[] if root else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                out = self.process.stdout.read().decode() if self.process.stdout else ""
                pytest.fail(f"dovecot did not start: {out} {self.log()}")
            try:
                with imaplib.IMAP4(self.host, self.port, timeout=5) as client:
                    client.login(USER, PASSWORD)
                    return
            except (OSError, imaplib.IMAP4.error):
                time.sleep(0.1)
        pytest.fail(f"dovecot did not answer on port {self.port}: {self.log()}")

    def log(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def config(self) -> dict[str, object]:
        """As settings.DESK_IMAP takes it."""
        return {
            "host": self.host,
            "port": self.port,
            "tls": "none",
            "user": USER,
            "password": PASSWORD,
            "folder": "INBOX",
            "done_folder": "",
            "ca_file": "",
        }

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def deliver(self, raw: bytes, folder: str = "INBOX") -> int:
        """Put a message in the mailbox (IMAP APPEND, as a mail server delivers): its UID."""
        client = self.client()
        try:
            client.create(f'"{folder}"')
            status, data = client.append(f"\"{folder}\"", None, None, raw.replace(b"\r\n", b"\n")
                                         .replace(b"\n", b"\r\n"))  # fmt: skip
            assert status == "OK", data
            text = data[0].decode() if data and isinstance(data[0], bytes) else ""
            return int(text.split("APPENDUID ")[1].split()[1].rstrip("]"))
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> dict[int, str]:
        """Each message's UID and flags in `folder`."""
        client = self.client()
        try:
            status, data = client.select(f'"{folder}"')
            assert status == "OK", data
            status, data = client.uid("FETCH", "1:*", "(FLAGS)")
            found: dict[int, str] = {}
            for line in data:
                if isinstance(line, bytes) and b"UID" in line:
                    text = line.decode()
                    uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                    found[uid] = text.split("FLAGS (")[1].split(")")[0]
            return found
        finally:
            client.logout()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dovecot_tls() -> Iterator[Dovecot]:
    """Dovecot with a test certificate: STARTTLS on `port`, implicit TLS on `ssl_port`."""
    server = Dovecot(tls=True)
    try:
        yield server
    finally:
        server.stop()
