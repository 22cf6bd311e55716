from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from supportflow import health
from tickets.admin.inbox import console_home
from tickets.widget import views as widget_views

handler500 = "supportflow.resilience.server_error"  # a database outage outside a view is a 503 too
handler400 = "supportflow.errors.bad_request"  # these three answer JSON under /api/, HTML elsewhere
handler403 = "supportflow.errors.permission_denied"
handler404 = "supportflow.errors.page_not_found"

admin.site.site_header = "SupportFlow agent console"
admin.site.site_title = "SupportFlow"
admin.site.index_title = "Queues and tickets"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="prometheus-django-metrics"),
    path("admin/", admin.site.admin_view(console_home)),  # agents land in their inbox; the rest on the index
    path("admin/", admin.site.urls),
    path("widget.js", widget_views.widget_script, name="widget-script"),  # the website widget (docs/widget.md)
    path("chat/widget/", include("tickets.widget.urls")),
    path("chat/", include("tickets.urls")),
    path("", include("tickets.email.urls")),  # /inbound/email/, /attachments/<id>/
    path("help/", include("knowledge.urls")),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the language switcher (POST, CSRF)
    path("analytics/", include("analytics.urls")),
    path("api/v1/", include("supportflow.api.urls")),
    path("integrations/", include("supportflow.integrations.urls")),
]

if settings.BENCH_ENDPOINTS:  # benchmark-only baseline, never on in production (see bench/http_bench.py)
    from supportflow.bench_views import BenchApiFloor, bench_hello, bench_ticket_floor

    urlpatterns.append(path("bench/hello/", bench_hello, name="bench-hello"))
    urlpatterns.append(path("bench/ticket-floor/", bench_ticket_floor, name="bench-ticket-floor"))
    urlpatterns.append(path("bench/api-floor/", BenchApiFloor.as_view(), name="bench-api-floor"))
