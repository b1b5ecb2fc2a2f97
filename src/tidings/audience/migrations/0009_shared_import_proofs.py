"""One proof of consent per import, shared by the subscriptions it wrote, instead of a
copy per contact: a proof may stand without a contact, so each proof names its account
(filled in here from the contact for the proofs that exist; they keep their contact)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def fill_accounts(apps, schema_editor):  # type: ignore[no-untyped-def]
    ConsentProof = apps.get_model("audience", "ConsentProof")
    Contact = apps.get_model("audience", "Contact")
    db = schema_editor.connection.alias
    ConsentProof.objects.using(db).filter(account__isnull=True).update(
        account=Subquery(
            Contact.objects.using(db).filter(pk=OuterRef("contact_id")).values("account_id")
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_restriction"),
        ("audience", "0008_restriction"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="consentproof",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="consent_proofs",
                to="accounts.account",
            ),
        ),
        migrations.RunPython(fill_accounts, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="consentproof",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="consent_proofs",
                to="accounts.account",
            ),
        ),
        migrations.AddField(
            model_name="consentproof",
            name="file_digest",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="consentproof",
            name="source",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.AddField(
            model_name="consentproof",
            name="stated_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="consentproof",
            name="stated_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="subscription",
            name="consent",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="subscriptions",
                to="audience.consentproof",
            ),
        ),
        migrations.AlterField(
            model_name="consentproof",
            name="contact",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="consent_proofs",
                to="audience.contact",
            ),
        ),
        migrations.AddIndex(
            model_name="consentproof",
            index=models.Index(fields=["account"], name="consentproof_account"),
        ),
        migrations.AddIndex(
            model_name="consentproof",
            index=models.Index(
                condition=models.Q(("stated_by__isnull", False)),
                fields=["stated_by"],
                name="consentproof_stated_by",
            ),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(
                condition=models.Q(("consent__isnull", False)),
                fields=["consent"],
                name="subscription_consent",
            ),
        ),
    ]
