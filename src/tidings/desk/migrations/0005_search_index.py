# The desk's keyed search index (desk/search.py), filled for the conversations already
# there, so they are found like the new ones.

import django.db.models.deletion
from django.db import migrations, models

from tidings.desk.search import digest, keys, terms


def index_existing(apps, schema_editor):
    Conversation = apps.get_model("desk", "Conversation")
    Message = apps.get_model("desk", "Message")
    SearchToken = apps.get_model("desk", "SearchToken")
    db = schema_editor.connection.alias  # the database being migrated, not "default"
    key = keys()[0]
    for conversation in Conversation.objects.using(db).order_by("pk").iterator(chunk_size=100):
        rows = [
            SearchToken(conversation_id=conversation.pk, digest=digest(key, t))
            for t in terms(conversation.subject or "")
        ]
        for pk, body in (
            Message.objects.using(db)
            .filter(conversation_id=conversation.pk)
            .values_list("pk", "body")
        ):
            rows += [
                SearchToken(conversation_id=conversation.pk, message_id=pk, digest=digest(key, t))
                for t in terms(body or "")
            ]
        SearchToken.objects.using(db).bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("desk", "0004_imap_mailbox_cursor"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchToken",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("digest", models.CharField(max_length=32)),
                (
                    "conversation",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="search_tokens",
                        to="desk.conversation",
                    ),
                ),
                (
                    "message",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="search_tokens",
                        to="desk.message",
                    ),
                ),
            ],
            options={
                "verbose_name": "support search index entry",
                "verbose_name_plural": "support search index",
                "indexes": [
                    models.Index(fields=["digest", "conversation"], name="desk_search_digest")
                ],
            },
        ),
        migrations.RunPython(index_existing, migrations.RunPython.noop),
    ]
