"""Signed tokens in the links of sent mail: one-click unsubscribe, open pixel, clicks.

Each token is signed with the instance's secret key and a salt per purpose, so a token
made for one purpose is refused by the others, and nobody can make one for a contact or
a URL that Tidings did not put in a message itself (no open redirect).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing

from tidings.core import signing as fast_signing

UNSUBSCRIBE_SALT = "tidings.sending.unsubscribe"
OPEN_SALT = "tidings.sending.open"
CLICK_SALT = "tidings.sending.click"


class InvalidToken(ValueError):
    """A link that was not made by Tidings, or was altered."""


@dataclass(frozen=True)
class UnsubscribeToken:
    contact_uuid: str
    campaign_id: int | None


def unsubscribe_token(contact_uuid: str, campaign_id: int | None = None) -> str:
    payload: dict[str, object] = {"c": contact_uuid}
    if campaign_id is not None:
        payload["m"] = campaign_id
    # Too short for compression to shorten it (the token is the same as with compress).
    return fast_signing.dumps(payload, salt=UNSUBSCRIBE_SALT)


def read_unsubscribe_token(token: str) -> UnsubscribeToken:
    data = _loads(token, UNSUBSCRIBE_SALT)
    if not isinstance(data, dict):
        raise InvalidToken("malformed")
    contact, campaign = data.get("c"), data.get("m")
    if not isinstance(contact, str) or not (campaign is None or isinstance(campaign, int)):
        raise InvalidToken("malformed")
    return UnsubscribeToken(contact, campaign)


@dataclass(frozen=True)
class TrackingToken:
    campaign_id: int
    # None under aggregate-only tracking: the link then says nothing about who clicked.
    delivery_id: int | None
    url: str = ""


# Tracking tokens carry no time: a send-time stamp would tell apart the recipients of an
# aggregate-only campaign (whose links must be the same for everyone) and adds nothing,
# since a tracking link does not expire; the raw events it leads to do.
def open_token(campaign_id: int, delivery_id: int | None) -> str:
    return signing.Signer(salt=OPEN_SALT).sign_object([campaign_id, delivery_id], compress=True)


def click_token(campaign_id: int, delivery_id: int | None, url: str) -> str:
    return signing.Signer(salt=CLICK_SALT).sign_object(
        [campaign_id, delivery_id, url], compress=True
    )


def read_open_token(token: str) -> TrackingToken:
    data = _loads(token, OPEN_SALT, timed=False)
    if not (isinstance(data, list) and len(data) == 2 and isinstance(data[0], int)):
        raise InvalidToken("malformed")
    if not (data[1] is None or isinstance(data[1], int)):
        raise InvalidToken("malformed")
    return TrackingToken(data[0], data[1])


def read_click_token(token: str) -> TrackingToken:
    data = _loads(token, CLICK_SALT, timed=False)
    if not (isinstance(data, list) and len(data) == 3 and isinstance(data[0], int)):
        raise InvalidToken("malformed")
    if not (data[1] is None or isinstance(data[1], int)) or not isinstance(data[2], str):
        raise InvalidToken("malformed")
    if not data[2].startswith(("https://", "http://")):
        raise InvalidToken("not a web link")
    return TrackingToken(data[0], data[1], data[2])


def _loads(token: str, salt: str, *, timed: bool = True) -> object:
    if len(token) > 4000:
        raise InvalidToken("too long")
    signer = signing.TimestampSigner(salt=salt) if timed else signing.Signer(salt=salt)
    try:
        return signer.unsign_object(token)
    except (signing.BadSignature, ValueError, UnicodeDecodeError):
        raise InvalidToken("bad signature") from None
