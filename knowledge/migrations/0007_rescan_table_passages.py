"""The injection guard now reads Markdown tables cell by cell (a row of "Yes | Yes | No" cells read like a
reply to an instruction and flagged two demo passages). Passages with a table are judged again: their
verdicts are cleared, and the beat's pending-passage sweep (or the first question that retrieves one)
scans them with the current guard."""

from django.db import migrations


def clear_table_verdicts(apps, schema_editor):
    Chunk = apps.get_model("knowledge", "Chunk")
    Chunk.objects.filter(text__contains="|", injection_flagged__isnull=False).update(
        injection_flagged=None, injection_score=None
    )


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0006_chunk_injection_scan")]

    operations = [migrations.RunPython(clear_table_verdicts, migrations.RunPython.noop)]
