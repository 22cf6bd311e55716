from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from supportflow.api import views

router = DefaultRouter(trailing_slash=True)
router.register("tickets", views.TicketViewSet, basename="ticket")
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("kb/articles", views.ArticleViewSet, basename="article")

app_name = "api"

urlpatterns = [
    path("kb/search/", views.KBSearchView.as_view(), name="kb-search"),
    path("analytics/summary/", views.AnalyticsSummaryView.as_view(), name="analytics-summary"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("", include(router.urls)),
    re_path(r"^[\s\S]*$", views.not_found),  # [\s\S], not ".": a path holding a newline too
]
