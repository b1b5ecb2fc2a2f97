"""How each list grew per day, kept by triggers (audience.growth).

The triggers are made, and the days before filled in from the subscriptions' dates, by
`growth.install_triggers`; it runs again after every migrate, since SQLite drops a
table's triggers when a migration rebuilds the table.
"""

import django.db.models.deletion
from django.db import migrations, models

from tidings.audience.growth import install_triggers


def install(apps, schema_editor):  # type: ignore[no-untyped-def]
    install_triggers(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('audience', '0010_merge_0009_list_counts_0009_shared_import_proofs'),
    ]

    operations = [
        migrations.CreateModel(
            name='ListGrowth',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('subscribed', models.BigIntegerField(default=0)),
                ('unsubscribed', models.BigIntegerField(default=0)),
                ('mailing_list', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='audience.mailinglist')),
            ],
            options={
                'indexes': [models.Index(fields=['mailing_list', 'day'], name='listgrowth_list_day')],
            },
        ),
        migrations.RunPython(install, migrations.RunPython.noop),
    ]
