"""Counters of each list's subscriptions per status, kept by triggers (audience.counters).

The triggers are made, and the counters filled from the subscriptions there are, by
`counters.install_triggers`; it runs again after every migrate, since SQLite drops a
table's triggers when a migration rebuilds the table.
"""

import django.db.models.deletion
from django.db import migrations, models

from tidings.audience.counters import install_triggers


def install(apps, schema_editor):  # type: ignore[no-untyped-def]
    install_triggers(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('audience', '0008_restriction'),
    ]

    operations = [
        migrations.CreateModel(
            name='ListCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('unconfirmed', 'waiting for confirmation'), ('confirmed', 'subscribed'), ('unsubscribed', 'unsubscribed')], max_length=12)),
                ('n', models.BigIntegerField()),
                ('mailing_list', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='counts', to='audience.mailinglist')),
            ],
            options={
                'indexes': [models.Index(fields=['mailing_list', 'status'], name='listcount_list_status')],
            },
        ),
        migrations.RunPython(install, migrations.RunPython.noop),
    ]
