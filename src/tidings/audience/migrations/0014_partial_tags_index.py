"""The tags' GIN index holds only contacts with a tag (PostgreSQL only).

Most contacts have none: the full index held an entry for every empty array, which each
imported contact paid for (about 1.4 s of PostgreSQL's time per million, measured) and
no query could use. `tags__has_element` (audience/lookups.py) states `tags <> '[]'` beside
its `@>`, so the planner proves this index's condition and uses it as before.
"""

from django.db import migrations

PARTIAL = (
    "CREATE INDEX contact_tags_gin ON audience_contact USING gin (tags jsonb_path_ops) "
    "WHERE tags <> '[]'::jsonb"
)
FULL = "CREATE INDEX contact_tags_gin ON audience_contact USING gin (tags jsonb_path_ops)"


def _replace(sql: str):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute("DROP INDEX IF EXISTS contact_tags_gin")
        schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("audience", "0013_contact_changes")]

    operations = [migrations.RunPython(_replace(PARTIAL), _replace(FULL))]
