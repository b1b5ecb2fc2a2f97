"""The ledger of every message that is not a campaign delivery (OutboundMail), in place
of the transactional messages' and product updates' own tables; the transactional
messages are copied into it (product updates' deliveries were records of work done).
Operator DKIM domains, the sender of an account's mail to its contacts."""

import django.db.models.deletion
import django.utils.timezone
import uuid
from django.conf import settings
from django.db import migrations, models


def copy_transactional(apps, schema_editor):  # type: ignore[no-untyped-def]
    Old = apps.get_model("sending", "TransactionalMessage")
    New = apps.get_model("sending", "OutboundMail")
    db = schema_editor.connection.alias
    for old in Old.objects.using(db).iterator(chunk_size=1000):
        name, _, address = old.from_email.rpartition(" <")
        New.objects.using(db).create(
            uuid=old.uuid,
            kind="transactional",
            purpose="service",
            account_id=old.account_id,
            to_email=old.to_email,
            from_email=address.rstrip(">") if name else old.from_email,
            from_name=name,
            subject=old.subject,
            text=old.text,
            html=old.html,
            status=old.status,
            attempts=old.attempts,
            claimed_at=old.claimed_at,
            message_id=old.message_id,
            created_at=old.created_at,
            sent_at=old.sent_at,
            last_error=old.last_error,
        )


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_restriction'),
        ('audience', '0008_restriction'),
        ('sending', '0004_alter_sendingsettings_options'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='OutboundMail',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('uuid', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ('kind', models.CharField(choices=[('transactional', 'transactional message (API)'), ('test', 'campaign test'), ('notice', "Tidings's notice"), ('product_update', 'product update'), ('contact', 'mail to a contact (confirmation, answer to a request)'), ('django', "Django's own mail (password reset)")], max_length=16)),
                ('purpose', models.CharField(choices=[('marketing', 'marketing (campaigns, product updates)'), ('service', 'service (mail the person asked for)'), ('notice', 'legal or security notice')], max_length=10)),
                ('key', models.CharField(blank=True, max_length=200, null=True, unique=True)),
                ('to_email', models.CharField(max_length=320)),
                ('from_email', models.CharField(max_length=320)),
                ('from_name', models.CharField(blank=True, default='', max_length=200)),
                ('reply_to', models.CharField(blank=True, default='', max_length=320)),
                ('subject', models.CharField(max_length=998)),
                ('text', models.TextField()),
                ('html', models.TextField(blank=True, default='')),
                ('headers', models.JSONField(blank=True, default=list)),
                ('forget', models.BooleanField(default=False)),
                ('status', models.CharField(choices=[('queued', 'queued'), ('sending', 'being sent'), ('sent', 'sent'), ('failed', 'failed'), ('skipped', 'not sent (no longer allowed to be mailed)'), ('unknown', 'unknown (worker lost mid-send, not retried)')], default='queued', max_length=8)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('not_before', models.DateTimeField(blank=True, null=True)),
                ('claimed_by', models.CharField(blank=True, default='', max_length=64)),
                ('claimed_at', models.DateTimeField(blank=True, null=True)),
                ('dispatched_at', models.DateTimeField(blank=True, null=True)),
                ('relay', models.CharField(blank=True, default='', max_length=200)),
                ('message_id', models.CharField(blank=True, default='', max_length=200)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('last_error', models.CharField(blank=True, default='', max_length=500)),
            ],
            options={
                'verbose_name': 'outbound mail',
                'verbose_name_plural': 'outbound mail',
            },
        ),
        migrations.AlterField(
            model_name='sendingdomain',
            name='account',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='sending_domains', to='accounts.account'),
        ),
        migrations.AddConstraint(
            model_name='sendingdomain',
            constraint=models.UniqueConstraint(condition=models.Q(('account__isnull', True)), fields=('domain',), name='operator_domain_once'),
        ),
        migrations.AddField(
            model_name='outboundmail',
            name='account',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.account'),
        ),
        migrations.AddField(
            model_name='outboundmail',
            name='contact',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='audience.contact'),
        ),
        migrations.AddField(
            model_name='outboundmail',
            name='user',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.RunPython(copy_transactional, migrations.RunPython.noop),
        migrations.DeleteModel(
            name='ProductUpdateDelivery',
        ),
        migrations.DeleteModel(
            name='TransactionalMessage',
        ),
        migrations.AddIndex(
            model_name='outboundmail',
            index=models.Index(fields=['status', 'not_before'], name='outbound_due'),
        ),
        migrations.AddIndex(
            model_name='outboundmail',
            index=models.Index(fields=['status', 'claimed_at'], name='outbound_claims'),
        ),
        migrations.AddIndex(
            model_name='outboundmail',
            index=models.Index(fields=['account', 'to_email'], name='outbound_account_to'),
        ),
        migrations.AddIndex(
            model_name='outboundmail',
            index=models.Index(fields=['created_at'], name='outbound_created'),
        ),
    ]
