"""The database refuses UPDATE, DELETE and TRUNCATE on the audit log (P7)."""

from django.db import migrations

from tidings.staff import db_guard


def install(apps, schema_editor):
    db_guard.install(schema_editor.connection)


def remove(apps, schema_editor):
    db_guard.remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("staff", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]
