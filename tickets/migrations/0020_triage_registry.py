"""The triage model registry (issue 18): a status per version, the held-out evaluation that decided it and
when it was last active (rollback order). Existing versions: the active one stays active, the others were
active once (every retrain used to activate), so they are retired, each activated when it was created."""

from django.db import migrations, models
from django.db.models import F


def backfill(apps, schema_editor):
    TriageModel = apps.get_model("tickets", "TriageModel")
    TriageModel.objects.filter(is_active=True).update(status="active", activated_at=F("created_at"))
    TriageModel.objects.filter(is_active=False).update(status="retired", activated_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0019_ai_config_versions"),
    ]

    operations = [
        migrations.AddField(
            model_name="triagemodel",
            name="status",
            field=models.CharField(
                choices=[
                    ("candidate", "Candidate"),
                    ("active", "Active"),
                    ("rejected", "Rejected"),
                    ("retired", "Retired"),
                ],
                default="candidate",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="triagemodel",
            name="evaluated_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="triagemodel",
            name="evaluation",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Held-out figures of this version and of the active one it was compared with.",
            ),
        ),
        migrations.AddField(
            model_name="triagemodel",
            name="reason",
            field=models.TextField(blank=True, help_text="Why it was promoted, rejected, retired or rolled back."),
        ),
        migrations.AddField(
            model_name="triagemodel",
            name="activated_at",
            field=models.DateTimeField(blank=True, help_text="When it last became active (rollback order).", null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
