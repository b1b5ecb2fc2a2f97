"""Restriction of processing (GDPR art. 18) for contacts, a request kind to ask for it,
and each contact's address digest (the suppression list's form of the address), filled
in here for the contacts that exist."""

from django.db import migrations, models

from tidings.core.digests import email_digest


def fill_digests(apps, schema_editor):  # type: ignore[no-untyped-def]
    Contact = apps.get_model("audience", "Contact")
    contacts = Contact.objects.using(schema_editor.connection.alias)
    batch = []
    for pk, email in contacts.filter(digest="").values_list("pk", "email").iterator(
        chunk_size=5000
    ):
        batch.append(Contact(pk=pk, digest=email_digest(email)))
        if len(batch) == 5000:
            contacts.bulk_update(batch, ["digest"])
            batch = []
    if batch:
        contacts.bulk_update(batch, ["digest"])


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_restriction'),
        ('audience', '0007_contact_name_trigram'),
    ]

    operations = [
        migrations.AddField(
            model_name='contact',
            name='digest',
            field=models.CharField(default='', editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name='contact',
            name='restricted_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='contact',
            name='restriction_lifts_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='contact',
            name='restriction_reason',
            field=models.CharField(blank=True, default='', max_length=500),
        ),
        migrations.AddField(
            model_name='audiencesettings',
            name='contact_sender',
            field=models.EmailField(blank=True, default='', max_length=254),
        ),
        migrations.AlterField(
            model_name='contactrequest',
            name='kind',
            field=models.CharField(choices=[('access', 'access to my data'), ('rectification', 'correction of my data'), ('erasure', 'erasure of my data'), ('objection', 'objection to the processing of my data'), ('restriction', 'restriction of the processing of my data')], max_length=16),
        ),
        migrations.AddIndex(
            model_name='contact',
            index=models.Index(condition=models.Q(('restricted_at__isnull', False)), fields=['account'], name='contact_restricted'),
        ),
        migrations.RunPython(fill_digests, migrations.RunPython.noop, elidable=True),
    ]
