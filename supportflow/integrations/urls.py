from django.urls import path

from supportflow.integrations import views as integrations_views

app_name = "integrations"

urlpatterns = [
    path("slack/events/", integrations_views.slack_events, name="slack-events"),
    path("discord/interactions/", integrations_views.discord_interactions, name="discord-interactions"),
]
