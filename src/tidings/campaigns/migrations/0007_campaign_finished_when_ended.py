"""A campaign has an end (`finished_at`) exactly when it ended, sent or cancelled: its
click links count their days from it. Rows from before that rule get their last change
as their end, or lose an end they should not have."""

from django.db import migrations, models
from django.db.models import F

ENDED = ["sent", "cancelled"]


def give_ends(apps, schema_editor):  # type: ignore[no-untyped-def]
    campaigns = apps.get_model("campaigns", "Campaign").objects.using(
        schema_editor.connection.alias
    )
    campaigns.filter(status__in=ENDED, finished_at__isnull=True).update(
        finished_at=F("updated_at")
    )
    campaigns.exclude(status__in=ENDED).filter(finished_at__isnull=False).update(
        finished_at=None
    )


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0006_visual_design")]

    operations = [
        migrations.RunPython(give_ends, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="campaign",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("finished_at__isnull", False), ("status__in", ENDED)),
                    models.Q(
                        models.Q(("status__in", ENDED), _negated=True),
                        ("finished_at__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="campaign_finished_when_ended",
            ),
        ),
    ]
