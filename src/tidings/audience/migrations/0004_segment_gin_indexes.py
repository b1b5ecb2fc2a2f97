"""GIN (jsonb_path_ops) indexes on contacts' attributes and tags, on PostgreSQL only.

Segment and search conditions on an attribute value or a tag compile to `@>` (see
audience/lookups.py), which these indexes answer without reading every contact: on a
1,000,000-contact account, an attribute condition counts in ~30 ms instead of ~200 ms
(bench/segment_count.py). SQLite, the embedded default, has no GIN: nothing is made there.
"""

from django.db import migrations

INDEXES = {
    "contact_attributes_gin": "attributes jsonb_path_ops",
    "contact_tags_gin": "tags jsonb_path_ops",
}


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON audience_contact USING gin ({column})"
        )


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("audience", "0003_transfer_indexes")]

    operations = [migrations.RunPython(create, drop)]
