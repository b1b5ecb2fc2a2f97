"""The media library: images checked by content, resized, stripped of metadata, served
at an unguessable address; bad input refused clearly with nothing stored."""

from __future__ import annotations

import csv
import io
import struct
import zipfile
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import ExifTags, Image

from tidings.accounts import services as accounts
from tidings.campaigns import media
from tidings.campaigns.media_views import public_url
from tidings.campaigns.models import MediaImage, SavedTemplate
from tidings.privacy.archive import write_archive

pytestmark = pytest.mark.django_db

CAMERA = "SecretCam 9000"


@pytest.fixture
def logged_in(client, customer):  # type: ignore[no-untyped-def]
    client.force_login(customer)
    return client


def photo(width: int = 2400, height: int = 1600, fmt: str = "JPEG") -> bytes:
    """A photo as a phone leaves it: camera make and a GPS position in its EXIF."""
    image = Image.new("RGB", (width, height), (200, 120, 40))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = CAMERA
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 24.0)
    out = io.BytesIO()
    image.save(out, fmt, exif=exif)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge size in a few bytes: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + chunk(b"IEND", b"")
    )


def upload(client, data: bytes, name: str = "photo.jpg"):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("campaigns:media_upload"),
        {"image": SimpleUploadedFile(name, data, content_type="image/png")},
        follow=True,
    )


def test_an_uploaded_photo_is_resized_stripped_and_served_at_an_unguessable_address(
    logged_in, client, customer
):
    original = photo()
    assert CAMERA.encode() in original
    response = upload(logged_in, original, name="../holiday photo.JPG")
    assert "Added holiday-photo.jpg (1200 by 800 pixels)" in response.content.decode()
    image = MediaImage.objects.get(account=customer.account)
    assert (image.width, image.height, image.content_type) == (1200, 800, "image/jpeg")
    assert len(image.key) >= 43  # 256 random bits
    stored = bytes(image.data)
    assert CAMERA.encode() not in stored and b"Exif" not in stored
    with Image.open(io.BytesIO(stored)) as kept:
        assert kept.size == (1200, 800)
        assert not kept.getexif()
    # Served to anyone with the address (a mail client logs in nowhere), as an image only.
    client.logout()
    url = public_url(image)
    served = client.get(url.removeprefix("http://testserver"))
    assert served.status_code == 200
    assert served["Content-Type"] == "image/jpeg"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served["Content-Security-Policy"].startswith("sandbox;")
    assert b"".join(served) == stored  # type: ignore[arg-type]
    assert client.get(url.replace(image.key, image.key[:-1] + "x")).status_code == 404


def test_a_small_png_with_transparency_stays_a_png_at_its_size(customer):
    out = io.BytesIO()
    Image.new("RGBA", (300, 200), (0, 0, 0, 0)).save(out, "PNG")
    image = media.upload_image(customer.account, name="logo.png", data=out.getvalue(), by=customer)
    assert (image.content_type, image.width, image.height, image.name) == (
        "image/png", 300, 200, "logo.png",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"%PDF-1.4 not an image at all", "invoice.png", "is not an image Tidings can read"),
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>x</script></svg>",
            "a.png",
            "is not an image",
        ),
        (photo()[:200], "cut.jpg", "is not an image Tidings can read"),
        (png_header_only(100_000, 100_000), "bomb.png", "more pixels than the 40 million"),
        (png_header_only(9_000, 9_000), "bomb.png", "more pixels than the 40 million"),
        (b"", "empty.png", "The file is empty"),
    ],
    ids=["pdf-named-png", "svg", "truncated", "decompression-bomb", "81-megapixels", "empty"],
)
def test_bad_uploads_are_refused_clearly_and_store_nothing(logged_in, data, name, message):
    response = upload(logged_in, data, name=name)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not MediaImage.objects.exists()


def test_an_image_over_the_limit_is_refused_and_a_2_gb_request_is_not_even_read(
    logged_in, settings
):
    big = b"\xff\xd8" + b"\0" * (media.MAX_BYTES + 10)
    response = upload(logged_in, big, name="huge.jpg")
    assert response.status_code == 413
    assert "larger than the limit" in response.content.decode()
    # A request declaring 2 GB: answered at once, the body never read.
    response = logged_in.generic(
        "POST",
        reverse("campaigns:media_upload"),
        b"",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(2 * 1024**3),
    )
    assert response.status_code == 413
    assert "larger than the limit of 10.0 MB" in response.content.decode()
    assert not MediaImage.objects.exists()


def test_the_library_lists_only_the_accounts_own_images(logged_in, customer, other_customer):
    theirs = media.upload_image(
        other_customer.account, name="theirs.jpg", data=photo(40, 30), by=None
    )
    mine = media.upload_image(customer.account, name="mine.jpg", data=photo(40, 30), by=None)
    page = logged_in.get(reverse("campaigns:media")).content.decode()
    assert public_url(mine) in page and "theirs.jpg" not in page and theirs.key not in page
    assert logged_in.post(reverse("campaigns:media_delete", args=[theirs.pk])).status_code == 404
    assert MediaImage.objects.filter(pk=theirs.pk).exists()
    logged_in.post(reverse("campaigns:media_delete", args=[mine.pk]))
    assert not MediaImage.objects.filter(pk=mine.pk).exists()


def test_an_upload_without_the_csrf_token_is_refused(customer):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(customer)
    response = upload(strict, photo(40, 30))
    assert response.status_code == 403
    assert not MediaImage.objects.exists()


@pytest.mark.promise("P20")
def test_the_accounts_archive_holds_its_images_and_templates_and_not_anothers(
    customer, other_customer, tmp_path
):
    mine = media.upload_image(customer.account, name="shop.jpg", data=photo(60, 40), by=None)
    media.upload_image(other_customer.account, name="theirs.jpg", data=photo(60, 40), by=None)
    SavedTemplate.objects.create(account=customer.account, name="Spring look", body="<p>x</p>")
    path = tmp_path / "all.zip"
    write_archive(customer.account, "csv", path)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert archive.read(f"images/{mine.key}-shop.jpg") == bytes(mine.data)
        assert not any("theirs" in n for n in names)
        rows = list(
            csv.DictReader(io.StringIO(archive.read("media-images.csv").decode("utf-8-sig")))
        )
        assert [r["name"] for r in rows] == ["shop.jpg"] and "data" not in rows[0]
        assert "Spring look" in archive.read("saved-templates.csv").decode("utf-8-sig")
        assert "images/: the images of your media library" in archive.read("README.txt").decode()


@pytest.mark.promise("P13", "P17")
def test_erasing_the_account_erases_its_images_and_their_address_stops_working(
    client, customer, other_customer, mailbox
):
    mine = media.upload_image(customer.account, name="shop.jpg", data=photo(60, 40), by=None)
    theirs = media.upload_image(other_customer.account, name="x.jpg", data=photo(60, 40), by=None)
    url = public_url(mine).removeprefix("http://testserver")
    assert client.get(url).status_code == 200
    accounts.close_account(customer.account, by=customer, erase_now=True)
    assert not MediaImage.objects.filter(pk=mine.pk).exists()
    assert client.get(url).status_code == 404
    assert MediaImage.objects.filter(pk=theirs.pk).exists()
