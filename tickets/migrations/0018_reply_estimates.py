"""Expectations for customers (issue 18): when the customer was told a person would reply."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0017_promises"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="reply_promised_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="At the handover the customer was told a person would reply by then "
                "(tickets.reply_estimates: the SLA bound, or sooner from recent replies).",
                null=True,
                verbose_name="person's reply promised by",
            ),
        ),
    ]
