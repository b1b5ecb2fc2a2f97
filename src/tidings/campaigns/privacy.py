"""Data map entries for campaigns."""

from collections.abc import Iterator
from typing import Any

from tidings.campaigns.models import Campaign, Layout, MediaImage, SavedTemplate
from tidings.core.datamap import declare_archive_files, declare_free_of_personal_data

# Not personal data, but the customer's application data: in their archive (P20).
declare_free_of_personal_data(
    Campaign, "the customer's campaign content and settings", account_path="account"
)
declare_free_of_personal_data(Layout, "the customer's HTML layouts", account_path="account")
declare_free_of_personal_data(
    Campaign.lists.through, "which lists a campaign goes to", account_path="campaign__account"
)
declare_free_of_personal_data(
    Campaign.segments.through,
    "which segments a campaign goes to",
    account_path="campaign__account",
)
declare_free_of_personal_data(
    SavedTemplate, "the campaign templates the customer saved", account_path="account"
)
# The image bytes go into the archive as files of their own (media/<key>.<ext>), not as
# a column: `data` is left out of the table.
declare_free_of_personal_data(
    MediaImage,
    "the images of the customer's media library (metadata stripped at upload)",
    account_path="account",
    secret_fields=("data",),
)


def media_files(account: Any) -> Iterator[tuple[str, bytes]]:
    """Each image of the account's library as a file named by its key (names may repeat)."""
    images = MediaImage.objects.filter(account=account).order_by("pk")
    for key, name, data in images.values_list("key", "name", "data").iterator(chunk_size=20):
        yield f"{key}-{name}", bytes(data)


declare_archive_files(
    "images",
    "the images of your media library, as Tidings serves them (file name: the key of "
    "its address, then its name; the images table describes each one)",
    media_files,
)
