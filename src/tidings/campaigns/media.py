"""The media library: images a customer uploads to use in campaigns.

An upload is trusted for nothing: its type is read from its content by Pillow (the name
and the declared type are ignored), its size in pixels is checked from the header before
a pixel is decoded (a decompression bomb is refused unread), and what is kept is a new
image drawn from the pixels alone, turned upright, at most `MAX_WIDTH` wide: no EXIF
(camera, GPS position), no ICC or text chunks, no trailing bytes. It is served at
an address made of 256 random bits (`MediaImage.key`), since mail clients fetch it
without a login.
"""

from __future__ import annotations

import io
import re
import warnings

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from tidings.accounts.models import Account, User
from tidings.campaigns.models import MediaImage
from tidings.core.uploads import size_label

# The largest file taken (the upload is read into memory up to this, no further).
MAX_BYTES: int = getattr(settings, "TIDINGS_MEDIA_MAX_BYTES", 10 * 1024**2)
# Images wider than this are scaled down: a mail is read at 600 pixels, twice for
# high-density screens.
MAX_WIDTH = 1200
# More pixels than this (read from the header) is refused before decoding: 40
# megapixels, a big camera's photo; a bomb declares far more.
MAX_PIXELS = 40_000_000
# Formats taken, by what Pillow reads in the content.
ACCEPTED = {"JPEG", "PNG", "GIF", "WEBP"}
NAME_MAX = 200


class MediaRejected(ValueError):
    """An upload that is not kept; the message says why, in the customer's words."""


def _clean_name(name: str, extension: str) -> str:
    stem = re.sub(r"[^\w.-]+", "-", name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip("-.")
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return f"{(stem or 'image')[: NAME_MAX - 8]}.{extension}"


def _cleaned(source: Image.Image) -> tuple[bytes, str, str, int, int]:
    """The image redrawn from its pixels: bytes, content type, extension, width, height."""
    upright = ImageOps.exif_transpose(source) or source
    alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    mode = "RGBA" if alpha else "RGB"
    pixels = upright.convert(mode)
    if pixels.width > MAX_WIDTH:
        height = max(1, round(pixels.height * MAX_WIDTH / pixels.width))
        pixels = pixels.resize((MAX_WIDTH, height), Image.Resampling.LANCZOS)
    # A new image from the raw pixels carries nothing of the file it came from.
    fresh = Image.frombytes(mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    if alpha or source.format in ("PNG", "GIF"):
        fresh.save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png", "png", fresh.width, fresh.height
    fresh.save(out, "JPEG", quality=85, optimize=True, progressive=True)
    return out.getvalue(), "image/jpeg", "jpg", fresh.width, fresh.height


def _bomb() -> MediaRejected:
    return MediaRejected(
        _(
            "This image has more pixels than the %(limit)s million Tidings decodes (a "
            "small file can declare a huge picture): nothing was stored. Export it smaller."
        )
        % {"limit": MAX_PIXELS // 1_000_000}
    )


def prepare_image(name: str, data: bytes) -> tuple[bytes, str, str, int, int, str]:
    """The cleaned image of an upload (bytes, type, extension, width, height, file name);
    MediaRejected if it is empty, too large, not an image or a decompression bomb."""
    if not data:
        raise MediaRejected(_("The file is empty: choose an image to upload."))
    if len(data) > MAX_BYTES:
        raise MediaRejected(
            _("The file is larger than the limit of %(limit)s for images: nothing was stored.")
            % {"limit": size_label(MAX_BYTES)}
        )
    not_an_image = MediaRejected(
        _(
            "%(name)s is not an image Tidings can read (JPEG, PNG, GIF or WebP), "
            "whatever its name says: nothing was stored."
        )
        % {"name": name or _("The file")}
    )
    with warnings.catch_warnings():
        # Pillow only warns between its limit and twice it: refuse there too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in ACCEPTED:
                    raise not_an_image
                if image.width * image.height > MAX_PIXELS:
                    raise _bomb()
                image.seek(0)  # the first frame of an animation
                image.load()
                body, content_type, extension, width, height = _cleaned(image)
        except MediaRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb() from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
            raise not_an_image from None
    return body, content_type, extension, width, height, _clean_name(name, extension)


def upload_image(account: Account, *, name: str, data: bytes, by: User | None) -> MediaImage:
    """Add an image to the account's media library, cleaned; MediaRejected if it is not
    one Tidings takes (nothing is stored then)."""
    body, content_type, _extension, width, height, clean_name = prepare_image(name, data)
    image = MediaImage(
        account=account,
        name=clean_name,
        content_type=content_type,
        width=width,
        height=height,
        size=len(body),
        data=body,
    )
    image.full_clean(exclude=["data"])
    with transaction.atomic():
        image.save()
    return image


def delete_image(image: MediaImage, *, by: User | None) -> None:
    """Remove an image from the library; campaigns already sent that show it show a
    missing image from then on."""
    image.delete()
