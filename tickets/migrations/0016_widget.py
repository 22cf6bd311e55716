import django.db.models.deletion
from django.db import migrations, models

import tickets.models.widget


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0015_ticket_verbose_names"),
    ]

    operations = [
        migrations.CreateModel(
            name="WidgetSite",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100, verbose_name="name")),
                (
                    "public_key",
                    models.CharField(
                        default=tickets.models.widget.new_public_key,
                        editable=False,
                        help_text="Goes in the snippet as data-site; public, not a secret.",
                        max_length=40,
                        unique=True,
                        verbose_name="public site key",
                    ),
                ),
                (
                    "allowed_origins",
                    models.JSONField(
                        default=list,
                        help_text="Only pages on these origins may show the widget, e.g. https://www.example.com.",
                        verbose_name="allowed origins",
                    ),
                ),
                (
                    "identity_secret",
                    models.CharField(
                        default=tickets.models.widget.new_identity_secret,
                        editable=False,
                        max_length=64,
                        verbose_name="identity secret",
                    ),
                ),
                ("is_active", models.BooleanField(default=True, verbose_name="active")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created")),
                (
                    "department",
                    models.ForeignKey(
                        blank=True,
                        help_text="Conversations started on this site go to this queue unless triage routes them.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="widget_sites",
                        to="tickets.department",
                        verbose_name="queue",
                    ),
                ),
            ],
            options={
                "verbose_name": "widget site",
                "verbose_name_plural": "widget sites",
                "ordering": ["name"],
            },
        ),
        migrations.CreateModel(
            name="WidgetConversation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("external_user_id", models.CharField(blank=True, max_length=200)),
                ("identity_verified", models.BooleanField(default=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "site",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="conversations",
                        to="tickets.widgetsite",
                    ),
                ),
                (
                    "ticket",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="widget_conversation",
                        to="tickets.ticket",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        condition=models.Q(("identity_verified", True)),
                        fields=["site", "external_user_id"],
                        name="widget_conv_verified_user",
                    )
                ],
            },
        ),
    ]
