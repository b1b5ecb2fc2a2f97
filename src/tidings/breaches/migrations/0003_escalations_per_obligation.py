"""Each obligation of a breach has its own clock (breaches.obligations): the steps mailed
are kept per obligation instead of one step for the incident. An incident mailed under
the old single 72-hour clock keeps its step for the obligations that clock covered (the
operator's authority and the notices, all on 72 hours), so nothing is mailed twice. A filing keeps the jurisdiction whose authority it went to
(empty before: the operator's own), which meets that authority's obligation."""

from django.conf import settings
from django.db import migrations, models

OLD_STEPS = (24, 48, 60, 72)  # the old ESCALATION_HOURS
RULED = {"GB", "CH", "US-TX", "US-FL", "US-CO"}  # jurisdictions of the table then


def carry_over(apps, schema_editor):  # type: ignore[no-untyped-def]
    Incident = apps.get_model("breaches", "Incident")
    Scope = apps.get_model("breaches", "Scope")
    db = schema_editor.connection.alias  # the database being migrated, not "default"
    country = settings.OPERATOR["country"]
    own = country if country in RULED else "EU"
    for incident in Incident.objects.using(db).filter(escalated_hours__gt=0):
        step = sum(1 for hours in OLD_STEPS if hours <= incident.escalated_hours)
        done = {f"authority:{own}": step}
        scope = (
            Scope.objects.using(db)
            .filter(incident=incident)
            .order_by("-computed_at", "-pk")
            .first()
        )
        for row in scope.per_account if scope else []:
            if row.get("processor"):
                done[f"processor:{row['account']}"] = step
            if row.get("users"):
                done[f"controller:{row['account']}"] = step
        incident.escalations = done
        incident.save(using=db, update_fields=["escalations"])


class Migration(migrations.Migration):
    dependencies = [("breaches", "0002_severity_and_drill")]

    operations = [
        migrations.AddField(
            model_name="incident",
            name="escalations",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="incident",
            name="clock_done",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="filing",
            name="jurisdiction",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.RunPython(carry_over, migrations.RunPython.noop),
        migrations.RemoveField(model_name="incident", name="escalated_hours"),
    ]
