from django.db import migrations


class Migration(migrations.Migration):
    """Ticket references (SF-000123) come from a Postgres sequence: unique under concurrent writers
    without locks; a rolled-back create leaves a gap in references, which is harmless."""

    dependencies = [("tickets", "0001_tickets_customers_departments_sla")]

    operations = [
        migrations.RunSQL(
            "CREATE SEQUENCE IF NOT EXISTS tickets_ticket_reference_seq START 1000",
            reverse_sql="DROP SEQUENCE IF EXISTS tickets_ticket_reference_seq",
        ),
    ]
