"""A published policy version is kept as it was published (P31)."""

import pytest

from tidings.privacy.policy import publish_policy


@pytest.mark.promise("P31")
def test_a_published_version_can_be_neither_edited_nor_deleted(db):
    version = publish_policy()
    assert version is not None
    version.text = "rewritten history"
    with pytest.raises(ValueError, match="never edited"):
        version.save()
    with pytest.raises(ValueError, match="never deleted"):
        version.delete()
    version.refresh_from_db()
    assert version.text != "rewritten history"
