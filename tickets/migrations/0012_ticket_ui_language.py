from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0011_inbox_tags_saved_views"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="ui_language",
            field=models.CharField(
                blank=True,
                help_text="The language of the customer's pages when the conversation started: their browser's, "
                "or the one they chose (tickets.languages says which wins).",
                max_length=8,
                verbose_name="page language",
            ),
        ),
        migrations.AddField(
            model_name="ticket",
            name="ui_language_chosen",
            field=models.BooleanField(
                default=False,
                help_text="The customer picked the page language themselves: it wins over the detected language.",
                verbose_name="page language chosen",
            ),
        ),
    ]
