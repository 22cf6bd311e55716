from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("tiles/", views.tiles, name="tiles"),
    path("agents/", views.agents, name="agents"),
    path("ai/", views.ai, name="ai"),
    path("savings/", views.savings_page, name="savings"),
    path("ai/experiments/<int:pk>/promote/", views.experiment_promote, name="experiment-promote"),
    path("knowledge-gaps/", views.knowledge_gaps, name="gaps"),
    path("knowledge-gaps/refresh/", views.knowledge_gaps_refresh, name="gaps-refresh"),
    path("knowledge-gaps/<int:pk>/draft/", views.knowledge_gap_draft, name="gap-draft"),
    path("definitions/", views.definitions, name="definitions"),
    path("export/<slug:name>.csv", views.export, name="export"),
    path("alerts/banner/", views.alerts_banner, name="alerts-banner"),
    path("alerts/dismiss/", views.alerts_dismiss, name="alerts-dismiss"),
]
