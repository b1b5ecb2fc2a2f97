from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0002_schedule_timezone"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="recipients_fixed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        # Campaigns started before: all their recipients were fixed in one statement.
        migrations.RunSQL(
            "UPDATE campaigns_campaign SET recipients_fixed_at = started_at "
            "WHERE started_at IS NOT NULL",
            migrations.RunSQL.noop,
        ),
    ]
