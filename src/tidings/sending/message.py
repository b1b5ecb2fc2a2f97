"""Building the bytes of one message fast, and signing them with DKIM.

Building a message with the standard library's EmailMessage costs about 1.2 ms
(DESIGN.md): far too slow per recipient. The fixed part (From, Reply-To, List-Id,
MIME structure) is made once per campaign by `Skeleton`; per recipient only the
subject, To, Message-ID, unsubscribe headers and the two encoded bodies are filled in.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import functools
import hashlib
import re
import time
import uuid
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tidings.core.mail import Attachment

# Headers covered by the DKIM signature (RFC 6376 5.4.1, plus the RFC 8058 pair, which
# must be signed for one-click unsubscribe to be trusted by mailbox providers).
SIGNED_HEADERS = [
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
]


def _header_text(value: str) -> str:
    """A header value, RFC 2047-encoded when it is not plain ASCII."""
    clean = " ".join(value.split())
    if clean.isascii():
        return clean
    # Folded with CRLF: the default LF would put a bare line feed inside the header.
    return Header(clean, "utf-8").encode(linesep="\r\n")


def _qp(text: str) -> bytes:
    """Quoted-printable UTF-8 with CRLF line ends and lines under 78 characters."""
    data = text.replace("\r\n", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, istext=True)
    return encoded.replace(b"\n", b"\r\n")


_dates: dict[int, str] = {}


def _date() -> str:
    """The Date header, made once a second (a thousand messages share it)."""
    now = int(time.time())
    date = _dates.get(now)
    if date is None:
        _dates.clear()
        date = _dates[now] = formatdate(now, usegmt=True)
    return date


def from_header(name: str, address: str) -> str:
    """`Name <address>`, the name encoded when it is not ASCII; whitespace collapsed, so
    a line break in a name can never start a header. An international address
    (SMTPUTF8) is written as it is."""
    name = " ".join(name.split())
    try:
        return formataddr((name, address), charset="utf-8")
    except UnicodeEncodeError:
        return f"{_header_text(name)} <{address}>" if name else address


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


@dataclass(frozen=True)
class Skeleton:
    """What every message of one campaign shares."""

    from_header: str
    reply_to: str
    list_id: str
    boundary: str
    domain: str
    extra_headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def make(
        cls,
        *,
        from_name: str,
        from_email: str,
        reply_to: str = "",
        list_name: str = "",
        list_key: str = "",
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> Skeleton:
        domain = domain_of(from_email)
        list_id = ""
        if list_key:
            label = _header_text(list_name.replace('"', "'")) if list_name else ""
            list_id = f'"{label}" <{list_key}.{domain}>' if label else f"<{list_key}.{domain}>"
        return cls(
            from_header=from_header(from_name, from_email),
            reply_to=reply_to,
            list_id=list_id,
            boundary="=_tidings_" + uuid.uuid4().hex,
            domain=domain,
            extra_headers=extra_headers,
        )

    def message_id(self, unique: str) -> str:
        return f"<{unique}@{self.domain}>"

    def build(
        self,
        *,
        to: str,
        subject: str,
        html: str,
        text: str,
        message_id: str,
        unsubscribe_urls: list[str] = (),  # type: ignore[assignment]
        headers: tuple[tuple[str, str], ...] = (),
        alternative: bool | None = None,
    ) -> bytes:
        """The whole message: multipart/alternative (text and HTML) when there is HTML
        or `alternative` says so, else text/plain alone."""
        head = self.head(
            to=to,
            subject=subject,
            message_id=message_id,
            unsubscribe_urls=unsubscribe_urls,
            headers=headers,
        )
        if not (html if alternative is None else alternative):
            return b"".join([head, b"\r\n", _PART_PLAIN, _qp(text)])
        return self.assemble(head, [_qp(text)], [_qp(html)])

    def head(
        self,
        *,
        to: str,
        subject: str,
        message_id: str,
        unsubscribe_urls: list[str] = (),  # type: ignore[assignment]
        headers: tuple[tuple[str, str], ...] = (),
    ) -> bytes:
        """The headers, up to MIME-Version (the part's headers follow)."""
        lines = [
            f"From: {self.from_header}",
            f"To: {to}",
            f"Subject: {_header_text(subject)}",
            f"Date: {_date()}",
            f"Message-ID: {message_id}",
        ]
        if self.reply_to:
            lines.append(f"Reply-To: {''.join(self.reply_to.split())}")
        if self.list_id:
            lines.append(f"List-Id: {self.list_id}")
        if unsubscribe_urls:
            lines.append("List-Unsubscribe: " + ", ".join(f"<{u}>" for u in unsubscribe_urls))
            if any(u.startswith("https://") or u.startswith("http://") for u in unsubscribe_urls):
                lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        for name, value in (*self.extra_headers, *headers):
            # Whitespace collapsed: a value can never start a header of its own.
            lines.append(f"{name}: {' '.join(str(value).split())}")
        lines.append("MIME-Version: 1.0")
        return "\r\n".join(lines).encode("utf-8")

    def assemble(self, head: bytes, text: list[bytes], html: list[bytes]) -> bytes:
        """The message from its headers (without MIME-Version's followers) and the
        quoted-printable pieces of its two parts (see `qp_piece`)."""
        b = self.boundary.encode()
        return b"".join(
            [
                head,
                b'\r\nContent-Type: multipart/alternative; boundary="',
                b,
                b'"\r\n\r\n--',
                b,
                b"\r\n",
                _PART_PLAIN,
                *text,
                b"\r\n--",
                b,
                b"\r\n",
                _PART_HTML,
                *html,
                b"\r\n--",
                b,
                b"--\r\n",
            ]
        )


_PART = (
    'Content-Type: text/{kind}; charset="utf-8"\r\n'
    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
)
_PART_PLAIN = _PART.format(kind="plain").encode()
_PART_HTML = _PART.format(kind="html").encode()


def qp_piece(text: str) -> bytes:
    """One piece of a quoted-printable body that is spliced between others: encoded on
    its own and ended with a soft line break, so pieces encoded once (a campaign's fixed
    text) and pieces encoded per message (a contact's name) join into one valid body.
    Its last line keeps room for the "=" of the break (at most 76 characters with it)."""
    encoded = _qp(text)
    cut = encoded.rfind(b"\r\n") + 2
    last = encoded[cut:]
    if len(last) > 75:
        # Break the last line again where no "=XX" escape is cut in two.
        at = 70
        while b"=" in last[at - 2 : at]:
            at -= 1
        encoded = encoded[:cut] + last[:at] + b"=\r\n" + last[at:]
    return encoded + b"=\r\n"


def dot_stuff(data: bytes) -> bytes:
    """The message as it goes after SMTP's DATA (RFC 5321 4.5.2): a line that starts
    with a dot gets another. A plain replace, a tenth of a regular expression's time
    on a 10 KB message."""
    stuffed = data.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def undo_dot_stuffing(data: bytes) -> bytes:
    """What a server keeps of a dot-stuffed message (for the local mailboxes)."""
    unstuffed = data.replace(b"\n..", b"\n.")
    return unstuffed[1:] if unstuffed.startswith(b"..") else unstuffed


# DKIM ----------------------------------------------------------------------------------


def generate_dkim_key() -> tuple[str, str]:
    """A new RSA-2048 key: (private key PEM, public key as base64 DER for DNS)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(public_der).decode()


# Runs of blanks that canonicalisation changes (a lone space stays as it is).
_WSP = re.compile(rb"[ \t]{2,}|\t")
_SPACES = re.compile(rb"  +")
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")


def _relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4: runs of blanks become one space, blanks before a line end go,
    empty lines at the end go; a non-empty body ends with one CRLF. Regular expressions
    only where a fast search finds something to change (each costs about 0.3 ms on a
    10 KB body; a quoted-printable body has no tab and no blank before a line end)."""
    if b"\t" in body:
        body = _WSP.sub(b" ", body)
    elif b"  " in body:
        body = _SPACES.sub(b" ", body)
    if b" \r\n" in body:
        body = _TRAILING_WSP.sub(b"\r\n", body)
    while body.endswith(b"\r\n"):
        body = body[:-2]
    return body + b"\r\n" if body else b""


def _relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: the name in lower case, the value unfolded, blanks collapsed and
    trimmed."""
    value = _WSP.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")
    return name.strip().lower() + b":" + value


def _headers(head: bytes) -> list[tuple[bytes, bytes]]:
    """(name, raw value) of each header, continuation lines kept with their header."""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        else:
            name, _, value = line.partition(b":")
            fields.append((name, value))
    return fields


class DkimSigner:
    """Signs messages for one domain (relaxed/relaxed, rsa-sha256). The key is loaded
    once; each signature is the canonicalisation and hashes of RFC 6376 plus one RSA
    operation by OpenSSL: about 0.6 ms, where dkimpy's own RSA takes about 13 ms
    (docs/sending.md). dkimpy verifies what this signs, in the tests."""

    def __init__(self, *, domain: str, selector: str, private_key: str) -> None:
        self.domain = domain
        self.selector = selector
        key = serialization.load_pem_private_key(private_key.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("a DKIM key must be an RSA key")
        self.key = key
        self._pem = private_key

    def __reduce__(self) -> tuple[Any, ...]:
        # To a render process (campaigns.renderpool), which signs the messages it makes:
        # the key as PEM, loaded there once.
        return (_loaded_signer, (self.domain, self.selector, self._pem))

    def sign(self, message: bytes) -> bytes:
        """`message` with a DKIM-Signature header in front."""
        return self.header(message) + message

    def header(self, message: bytes) -> bytes:
        """The DKIM-Signature header line(s) of `message`, ending with CRLF."""
        head, _, body = message.partition(b"\r\n\r\n")
        body_hash = base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest()).decode()
        present: dict[bytes, bytes] = {}
        for name, value in _headers(head):
            present[name.strip().lower()] = value  # the last one of a name is signed
        names = [h.decode() for h in SIGNED_HEADERS if h in present]
        # Folded as it will be sent; the hash covers its canonical form with b= empty.
        header = (
            f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={self.domain}; s={self.selector};\r\n"
            f"\tt={int(time.time())}; h={_fold_list(names)};\r\n\tbh={body_hash};\r\n\tb="
        )
        signed = b"".join(_relaxed_header(n, present[n]) + b"\r\n" for n in map(str.encode, names))
        signed += _relaxed_header(b"dkim-signature", header.encode())
        signature = base64.b64encode(self.key.sign(signed, padding.PKCS1v15(), hashes.SHA256()))
        folded = b"\r\n\t".join(signature[i : i + 72] for i in range(0, len(signature), 72))
        return b"DKIM-Signature: " + header.encode() + folded + b"\r\n"


def _fold_list(names: list[str], width: int = 60) -> str:
    """The signed header names, folded after a colon when long (FWS is allowed there)."""
    lines, line = [], ""
    for name in names:
        if line and len(line) + len(name) > width:
            lines.append(line)
            line = ""
        line += name + ":"
    lines.append(line)
    return "\r\n\t".join(lines).rstrip(":")


@functools.lru_cache(maxsize=64)
def signer(domain: str, selector: str, private_key: str) -> DkimSigner:
    return DkimSigner(domain=domain, selector=selector, private_key=private_key)


@functools.lru_cache(maxsize=16)
def _loaded_signer(domain: str, selector: str, private_key: str) -> DkimSigner:
    return signer(domain, selector, private_key)


def dkim_sign(message: bytes, *, domain: str, selector: str, private_key: str) -> bytes:
    """`message` with a DKIM-Signature header in front (relaxed/relaxed, rsa-sha256)."""
    return signer(domain, selector, private_key).sign(message)


def attach(data: bytes, files: list[Attachment]) -> bytes:
    """`data` (a whole message) as multipart/mixed with `files` attached, base64. Rare
    (an invoice), so the standard library's 1 ms does not matter here."""
    if not files:
        return data
    message = email.message_from_bytes(data, policy=email.policy.SMTP)
    assert isinstance(message, EmailMessage)
    message.make_mixed()
    for file in files:
        maintype, _sep, subtype = file.content_type.partition("/")
        message.add_attachment(
            file.data, maintype=maintype, subtype=subtype, filename=file.filename
        )
    return message.as_bytes(policy=email.policy.SMTP)
