import secrets

from django.db import migrations, models

import tickets.models


def backfill_access_keys(apps, schema_editor):
    Ticket = apps.get_model("tickets", "Ticket")
    for ticket in Ticket.objects.filter(access_key__isnull=True).only("pk").iterator():
        Ticket.objects.filter(pk=ticket.pk).update(access_key=secrets.token_urlsafe(32))


class Migration(migrations.Migration):
    """Customer conversation links and idempotent sends: expand (nullable), backfill, contract (unique)."""

    dependencies = [("tickets", "0002_ticket_reference_sequence")]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="access_key",
            field=models.CharField(max_length=64, null=True, editable=False),
        ),
        migrations.RunPython(backfill_access_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="ticket",
            name="access_key",
            field=models.CharField(
                default=tickets.models.new_access_key,
                editable=False,
                help_text="Secret behind the customer's signed conversation link; rotate it to revoke the link.",
                max_length=64,
                unique=True,
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="client_msg_id",
            field=models.CharField(
                blank=True,
                help_text="Sender's id for this message; a resend with the same id is not stored twice.",
                max_length=64,
            ),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(
                condition=models.Q(("client_msg_id", ""), _negated=True),
                fields=("ticket", "client_msg_id"),
                name="message_client_id_unique_per_ticket",
            ),
        ),
    ]
