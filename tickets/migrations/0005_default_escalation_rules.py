"""The default escalation rules, editable in the admin afterwards. Created by name with get_or_create,
so re-running never duplicates a rule or overwrites one an admin edited."""

from django.db import migrations

DEFAULT_RULES = [
    # order, name, condition, value, reason, set_priority
    (10, "Customer asks for a human", "human_requested", "", "Customer asked for a human", ""),
    (20, "Prompt injection", "injection", "", "Possible prompt injection: needs a human", ""),
    (
        30,
        "Security and fraud",
        "keywords",
        "hacked, hacker, account takeover, someone logged in, unauthorized, unauthorised, fraud, stolen, "
        "phishing, data breach, compromised",
        "Security or fraud concern",
        "urgent",
    ),
    (
        40,
        "Legal",
        "keywords",
        "lawyer, attorney, legal action, lawsuit, sue you, court, gdpr complaint, data protection authority, "
        "chargeback",
        "Legal or regulatory matter",
        "high",
    ),
    (50, "Urgent priority", "priority_at_least", "urgent", "Urgent: a human takes it", ""),
    (60, "Angry customer", "sentiment_is", "angry", "Customer is upset", ""),
    (70, "VIP customer", "vip", "", "VIP customer", ""),
    (80, "Out of scope", "out_of_scope", "", "Not something the knowledge base covers", ""),
    (90, "No answer in the knowledge base", "no_answer", "", "No knowledge-base article answers it", ""),
    (100, "Low confidence", "low_confidence", "", "AI not confident enough to answer", ""),
    (110, "Repeated contact", "repeated_contact", "4", "Customer wrote several times without resolution", ""),
    (120, "AI already answered twice", "ai_replies_at_least", "2", "AI answers did not resolve it", ""),
]


def create_rules(apps, schema_editor):
    EscalationRule = apps.get_model("tickets", "EscalationRule")
    for order, name, condition, value, reason, set_priority in DEFAULT_RULES:
        EscalationRule.objects.get_or_create(
            name=name,
            defaults={
                "order": order,
                "condition": condition,
                "value": value,
                "reason": reason,
                "set_priority": set_priority,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0004_ai_pipeline")]
    operations = [migrations.RunPython(create_rules, migrations.RunPython.noop)]
