"""Automations' triggers (a tag added, a date attribute, a click, an API event, re-entry)
and steps of every kind; an enrolment points at its step by identity (issue 21). The
database triggers of `automations.watch` are made here and again after every migrate."""

import datetime
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from tidings.automations import watch


def point_at_steps(apps, schema_editor):
    """An enrolment waited for a step by its position: it now points at the step."""
    alias = schema_editor.connection.alias
    Enrolment = apps.get_model("automations", "Enrolment")
    Step = apps.get_model("automations", "Step")
    for step in Step.objects.using(alias).select_related("automation").iterator():
        Enrolment.objects.using(alias).filter(
            automation_id=step.automation_id, position=step.position, status="active"
        ).update(step=step, arrived_at=step.automation.activated_at)
    # Past the last step: done.
    Enrolment.objects.using(alias).filter(status="active", step__isnull=True).update(
        status="done", due_at=None
    )


def install_triggers(apps, schema_editor):
    watch.install_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_language_and_time_zone"),
        ("audience", "0012_merge_0011_contact_attributes_0011_list_growth"),
        ("automations", "0004_webhooks_complete"),
        ("campaigns", "0006_visual_design"),
        ("sending", "0011_drill_kind"),
    ]

    operations = [
        migrations.CreateModel(
            name="PendingEntry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "verbose_name": "automation entry waiting",
                "verbose_name_plural": "automation entries waiting",
            },
        ),
        migrations.CreateModel(
            name="TriggerEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                ("client_id", models.CharField(max_length=100)),
                ("received_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "verbose_name": "automation event",
                "verbose_name_plural": "automation events",
            },
        ),
        migrations.RemoveConstraint(
            model_name="steprun",
            name="step_run_once",
        ),
        migrations.AddField(
            model_name="automation",
            name="date_attribute",
            field=models.CharField(
                blank=True, default="", max_length=64, verbose_name="date attribute"
            ),
        ),
        migrations.AddField(
            model_name="automation",
            name="date_time",
            field=models.TimeField(default=datetime.time(9, 0), verbose_name="at"),
        ),
        migrations.AddField(
            model_name="automation",
            name="date_yearly",
            field=models.BooleanField(default=True, verbose_name="every year"),
        ),
        migrations.AddField(
            model_name="automation",
            name="dates_swept_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="automation",
            name="event_name",
            field=models.CharField(
                blank=True, default="", max_length=100, verbose_name="event name"
            ),
        ),
        migrations.AddField(
            model_name="automation",
            name="reentry",
            field=models.BooleanField(default=False, verbose_name="contacts may enter again"),
        ),
        migrations.AddField(
            model_name="automation",
            name="trigger_campaign",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="campaigns.campaign",
                verbose_name="campaign",
            ),
        ),
        migrations.AddField(
            model_name="automation",
            name="trigger_tag",
            field=models.CharField(blank=True, default="", max_length=100, verbose_name="tag"),
        ),
        migrations.AddField(
            model_name="automation",
            name="trigger_url",
            field=models.CharField(blank=True, default="", max_length=2000, verbose_name="link"),
        ),
        migrations.AddField(
            model_name="enrolment",
            name="arrived_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="enrolment",
            name="round",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddField(
            model_name="enrolment",
            name="step",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="waiting",
                to="automations.step",
            ),
        ),
        migrations.AddField(
            model_name="step",
            name="about",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="automations.step",
            ),
        ),
        migrations.AddField(
            model_name="step",
            name="key",
            field=models.CharField(blank=True, default="", max_length=100),
        ),
        migrations.AddField(
            model_name="step",
            name="kind",
            field=models.CharField(
                choices=[
                    ("send", "send a message"),
                    ("wait", "wait"),
                    ("condition", "condition"),
                    ("add_tag", "add a tag"),
                    ("remove_tag", "remove a tag"),
                    ("add_to_list", "add to a list"),
                    ("remove_from_list", "remove from a list"),
                    ("leave", "leave the automation"),
                ],
                default="send",
                max_length=16,
                verbose_name="kind",
            ),
        ),
        migrations.AddField(
            model_name="step",
            name="otherwise",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="automations.step",
            ),
        ),
        migrations.AddField(
            model_name="step",
            name="tag",
            field=models.CharField(blank=True, default="", max_length=100, verbose_name="tag"),
        ),
        migrations.AddField(
            model_name="step",
            name="target_list",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="audience.mailinglist",
                verbose_name="list",
            ),
        ),
        migrations.AddField(
            model_name="step",
            name="test",
            field=models.CharField(
                blank=True,
                choices=[
                    ("equals", "attribute equals"),
                    ("contains", "attribute contains"),
                    ("is_set", "attribute is set"),
                    ("has_tag", "has the tag"),
                    ("opened", "opened the message of step"),
                    ("clicked", "clicked in the message of step"),
                ],
                default="",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="step",
            name="value",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.AddField(
            model_name="step",
            name="wait_amount",
            field=models.PositiveIntegerField(default=0, verbose_name="wait"),
        ),
        migrations.AddField(
            model_name="step",
            name="wait_time",
            field=models.TimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="step",
            name="wait_unit",
            field=models.CharField(
                choices=[("minutes", "minutes"), ("hours", "hours"), ("days", "days")],
                default="days",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="step",
            name="wait_weekday",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="steprun",
            name="round",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AlterField(
            model_name="automation",
            name="trigger",
            field=models.CharField(
                choices=[
                    ("joined_list", "subscribed to a list"),
                    ("tag_added", "a tag added"),
                    ("date", "a date attribute"),
                    ("clicked", "clicked a link of a campaign"),
                    ("event", "an event posted to the API"),
                ],
                default="joined_list",
                max_length=16,
                verbose_name="trigger",
            ),
        ),
        migrations.AlterField(
            model_name="enrolment",
            name="status",
            field=models.CharField(
                choices=[
                    ("active", "in the automation"),
                    ("done", "went through every step"),
                    ("left", "left (may no longer be mailed)"),
                    ("exited", "left by a step of the automation"),
                ],
                default="active",
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="step",
            name="campaign",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="automation_step",
                to="campaigns.campaign",
            ),
        ),
        migrations.AddIndex(
            model_name="automation",
            index=models.Index(fields=["account", "trigger", "status"], name="automation_trigger"),
        ),
        migrations.AddConstraint(
            model_name="steprun",
            constraint=models.UniqueConstraint(
                fields=("step", "contact", "round"), name="step_run_once"
            ),
        ),
        migrations.AddField(
            model_name="pendingentry",
            name="automation",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="automations.automation",
            ),
        ),
        migrations.AddField(
            model_name="pendingentry",
            name="contact",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="audience.contact"
            ),
        ),
        migrations.AddField(
            model_name="triggerevent",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.account"
            ),
        ),
        migrations.AddField(
            model_name="triggerevent",
            name="contact",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="automation_events",
                to="audience.contact",
            ),
        ),
        migrations.AddConstraint(
            model_name="triggerevent",
            constraint=models.UniqueConstraint(
                fields=("account", "client_id"), name="trigger_event_once"
            ),
        ),
        migrations.RunPython(point_at_steps, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name="enrolment",
            name="position",
        ),
        migrations.RunPython(install_triggers, migrations.RunPython.noop),
    ]
