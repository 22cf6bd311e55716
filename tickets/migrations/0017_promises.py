"""Promises kept (issue 17): a customer's email opt-out, and a key that makes a CSAT survey go out once."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0016_widget"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="email_unsubscribed_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="When they unsubscribed (the link in our emails): no more reply copies of chats or "
                "rating requests. Replies to their own emails still go out — they are the conversation.",
                null=True,
                verbose_name="unsubscribed from email",
            ),
        ),
        migrations.AddField(
            model_name="emailrecord",
            name="key",
            field=models.CharField(
                blank=True,
                help_text="What an outbound email without a message is for (``csat:<ticket id>``): unique, so it "
                "goes out once.",
                max_length=100,
            ),
        ),
        migrations.AlterField(
            model_name="emailrecord",
            name="status",
            field=models.CharField(
                choices=[
                    ("received", "Received"),
                    ("ignored", "Ignored (automatic mail, not threaded)"),
                    ("pending", "Waiting to be sent"),
                    ("sent", "Sent"),
                    ("failed", "Sending failed"),
                    ("skipped", "Not sent (no deliverable address, or unsubscribed)"),
                ],
                max_length=10,
            ),
        ),
        migrations.AddConstraint(
            model_name="emailrecord",
            constraint=models.UniqueConstraint(
                condition=models.Q(("key", ""), _negated=True), fields=("key",), name="emailrecord_key_unique"
            ),
        ),
    ]
