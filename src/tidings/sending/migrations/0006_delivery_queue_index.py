"""The claims' index: a campaign's queued deliveries between two ids, in id order.

With (campaign, status) alone, every claim of 50 deliveries read all the queued rows of
its campaign and sorted them (quadratic in the campaign's size: PostgreSQL spent more
than the workers at 60,000 recipients). The lone campaign index goes: (campaign,
contact) and this one lead with it.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audience', '0008_restriction'),
        ('campaigns', '0004_outbound_pipeline'),
        ('sending', '0005_outbound_pipeline'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='delivery',
            name='delivery_campaign_status',
        ),
        migrations.AlterField(
            model_name='delivery',
            name='campaign',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='campaigns.campaign'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['campaign', 'status', 'id'], name='delivery_campaign_queue'),
        ),
    ]
