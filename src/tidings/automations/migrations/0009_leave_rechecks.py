"""Contacts whose mailability may have changed, written by database triggers on what the
rule reads (automations.watch), so that the scheduler's minute checks those, not every
contact of every automation; every contact is checked hourly."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from tidings.automations import watch


def install_triggers(apps, schema_editor):
    watch.install_triggers(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('audience', '0013_contact_changes'),
        ('automations', '0008_split_test_time_zone'),
    ]

    operations = [
        migrations.AddField(
            model_name='automation',
            name='leave_swept_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name='Recheck',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField(default=django.utils.timezone.now)),
                ('automation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='automations.automation')),
                ('contact', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='audience.contact')),
            ],
            options={
                'verbose_name': 'automation contact to check again',
                'verbose_name_plural': 'automation contacts to check again',
            },
        ),
        migrations.RunPython(install_triggers, migrations.RunPython.noop),
    ]
