from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("supportflow", "0001_integrations"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery",
            name="attempt_log",
            field=models.JSONField(
                blank=True,
                default=list,
                editable=False,
                help_text="Every attempt: when, status code, error, duration.",
            ),
        ),
    ]
