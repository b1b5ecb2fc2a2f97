"""The guard again (db_guard.py holds the SQL): the maintenance setting no longer lifts it
for a role that could not lift it anyway, and retention deletes through two functions
that `tidings audit protect` hands to the log's own owner role (P7, P12)."""

from django.db import migrations

from tidings.staff import db_guard


def reinstall(apps, schema_editor):
    db_guard.remove(schema_editor.connection)
    db_guard.install(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("staff", "0003_audit_expiry")]

    operations = [migrations.RunPython(reinstall, migrations.RunPython.noop)]
