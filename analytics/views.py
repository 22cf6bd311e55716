"""Manager analytics pages (`/analytics/`): thin views over ``analytics.metrics`` (docs/metrics.md).

Only superusers and staff in the Managers group get in: anyone else signed in gets a 403 page that
says so, anonymous visitors are sent to the sign-in page. Bad filters give a 400 with the form's
errors. Every table and chart has a CSV export (``export``), neutralised against spreadsheet formulas.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable
from functools import wraps
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from analytics import alerts, charts, experiments, gaps, metrics, reply_estimates, rollup, savings
from analytics.models import KnowledgeGap
from supportflow.spreadsheet import safe_cell
from tickets.models import Department, Ticket
from tickets.roles import user_is_agent, user_is_manager

DEFAULT_DAYS = 30
MAX_DAYS = 731


def manager_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not user_is_manager(request.user):
            return _render(request, "analytics/forbidden.html", {"title": gettext("Not allowed")}, status=403)
        return view(request, *args, **kwargs)

    return wrapped


class FilterForm(forms.Form):
    start = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    department = forms.TypedChoiceField(label=_("Department"), required=False, coerce=int, empty_value=None)
    channel = forms.ChoiceField(label=_("Channel"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["department"].choices = [
            ("", gettext("All departments")),
            ("0", metrics.NO_DEPARTMENT),
            *Department.objects.order_by("name").values_list("pk", "name"),
        ]
        self.fields["channel"].choices = [("", gettext("All channels")), *Ticket.Channel.choices]

    def clean(self):
        data = super().clean()
        today = rollup.today()
        end = data.get("end") or today
        start = data.get("start") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError(gettext("The start date must be on or before the end date."))
        if (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(gettext("Choose a range of at most %(days)s days.") % {"days": MAX_DAYS})
        if end > today + dt.timedelta(days=1):
            raise forms.ValidationError(gettext("The end date is in the future."))
        data["start"], data["end"] = start, end
        return data

    def filters(self) -> metrics.Filters:
        d = self.cleaned_data
        return metrics.Filters(d["start"], d["end"], d.get("department"), d.get("channel") or "")


def _filters(request: HttpRequest) -> tuple[FilterForm, metrics.Filters | None]:
    form = FilterForm(request.GET)
    if not form.is_valid():
        return form, None
    f = form.filters()
    shown = {"start": f.start.isoformat(), "end": f.end.isoformat(), "channel": f.channel}
    if f.department_id is not None:
        shown["department"] = str(f.department_id)
    display = FilterForm(shown)  # the form shows the range in effect, defaults included
    display.is_valid()
    return display, f


def _render(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    """Pages look like the rest of the console: the admin's header, user links and dark mode."""
    from django.contrib import admin

    return render(request, template, {**admin.site.each_context(request), **context}, status=status)


def _page(
    request: HttpRequest, template: str, build: Callable[[metrics.Filters], dict], *, page: str, title: str
) -> HttpResponse:
    form, f = _filters(request)
    base = {"form": form, "page": page, "page_title": title, "title": title}
    if f is None:
        return _render(request, template, {**base, "query": ""}, status=400)
    rollup.ensure_fresh()
    with metrics.reading():
        figures = build(f)
    return _render(request, template, {**base, "filters": f, "query": request.GET.urlencode(), **figures})


# --- pages ----------------------------------------------------------------------------------------


@require_GET
@manager_required
def overview(request: HttpRequest) -> HttpResponse:
    def build(f: metrics.Filters) -> dict:
        series = metrics.daily(f)
        days = series["days"]
        categories = metrics.counts_by_day(f, "category")
        top = dict(sorted(categories.items(), key=lambda kv: -sum(kv[1]))[:8])
        return {
            "totals": metrics.totals(f),
            "live": metrics.live(f),
            "sla": metrics.sla_compliance(f),
            "reply_estimates": reply_estimates.reply_estimate_accuracy(f),
            "charts": [
                charts.line_chart(gettext("Tickets created by channel"), days, series["volume_by_channel"]),
                charts.line_chart(gettext("Tickets created by department"), days, series["volume_by_department"]),
                charts.line_chart(gettext("Tickets created by category (top 8)"), days, top),
                charts.bar_chart(gettext("First response time"), metrics.first_response_distribution(f)),
                charts.bar_chart(gettext("Resolution time"), metrics.resolution_distribution(f)),
                charts.line_chart(
                    gettext("CSAT: share of ratings 4–5"), days, {gettext("CSAT"): series["csat_share"]}, percent=True
                ),
                charts.bar_chart(gettext("Sentiment of new tickets"), metrics.counts(f, "sentiment")),
                charts.line_chart(
                    gettext("Resolved by AI vs escalated"),
                    days,
                    {gettext("Resolved by AI"): series["automation"], gettext("Escalated"): series["escalation"]},
                ),
                charts.line_chart(
                    gettext("AI cost per ticket (USD)"), days, {gettext("USD per ticket"): series["cost_per_ticket"]}
                ),
            ],
            "exports": OVERVIEW_EXPORTS,
        }

    return _page(request, "analytics/overview.html", build, page="overview", title=gettext("Overview"))


@require_GET
@manager_required
def tiles(request: HttpRequest) -> HttpResponse:
    """The overview's tiles alone, for HTMX polling (every 15 s)."""
    form, f = _filters(request)
    if f is None:
        return HttpResponse(
            gettext("Invalid filters: %(errors)s") % {"errors": "; ".join(form.non_field_errors())}, status=400
        )
    rollup.ensure_fresh()
    with metrics.reading():
        context = {"totals": metrics.totals(f), "live": metrics.live(f), "query": request.GET.urlencode()}
    return render(request, "analytics/_tiles.html", context)


@require_GET
@manager_required
def agents(request: HttpRequest) -> HttpResponse:
    return _page(
        request,
        "analytics/agents.html",
        lambda f: {"agents": metrics.agents(f)},
        page="agents",
        title=gettext("Agents"),
    )


@require_GET
@manager_required
def ai(request: HttpRequest) -> HttpResponse:
    def build(f: metrics.Filters) -> dict:
        summary = metrics.ai_summary(f)
        return {
            "summary": summary,
            "runs": metrics.ai_runs(f),
            "experiments": experiments.experiments_summary(),
            "cache": metrics.ai_cache_summary(f),
            "charts": [
                charts.bar_chart(gettext("Escalations by reason"), summary["escalations_by_reason"][:12]),
                charts.bar_chart(
                    gettext("Sent AI answers later reopened or rated 1–2, by confidence"),
                    [(row["confidence"], row["bad_share"]) for row in summary["calibration"]],
                    percent=True,
                ),
            ],
        }

    return _page(request, "analytics/ai.html", build, page="ai", title=gettext("AI performance"))


@require_GET
@manager_required
def savings_page(request: HttpRequest) -> HttpResponse:
    return _page(
        request,
        "analytics/savings.html",
        lambda f: {"savings": savings.savings(f)},
        page="savings",
        title=gettext("Savings"),
    )


@require_GET
@manager_required
def knowledge_gaps(request: HttpRequest) -> HttpResponse:
    clusters = list(KnowledgeGap.objects.select_related("article")[: gaps.MAX_SHOWN])
    total = sum(c.size for c in clusters)
    context = {"gaps": clusters, "total": total, "status": gaps.status(), "page": "gaps"}
    return render(
        request,
        "analytics/gaps.html",
        {**context, "page_title": gettext("Knowledge gaps"), "title": gettext("Knowledge gaps")},
    )


@require_GET
@manager_required
def definitions(request: HttpRequest) -> HttpResponse:
    """docs/metrics.md, rendered: the exact definition of every figure, next to the figures."""
    from markdown_it import MarkdownIt

    path = Path(settings.BASE_DIR) / "docs" / "metrics.md"
    if not path.exists():
        raise Http404("The definitions file is not installed.")
    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(path.read_text(encoding="utf-8"))
    context = {
        "page": "definitions",
        "page_title": gettext("Definitions"),
        "title": gettext("Definitions"),
        "body": mark_safe(html),  # noqa: S308 — markdown-it with html off escapes the (trusted) file
    }
    return _render(request, "analytics/definitions.html", context)


@require_POST
@manager_required
def knowledge_gaps_refresh(request: HttpRequest) -> HttpResponse:
    from analytics.tasks import refresh_knowledge_gaps

    refresh_knowledge_gaps.delay()
    messages.info(request, gettext("Regrouping the unanswered questions in the background; reload in a minute."))
    return redirect("analytics:gaps")


@require_POST
@manager_required
def knowledge_gap_draft(request: HttpRequest, pk: int) -> HttpResponse:
    gap = get_object_or_404(KnowledgeGap, pk=pk)
    article = gaps.draft_article(gap=gap, user=request.user)
    messages.success(request, gettext("Draft article “%(title)s” created for review.") % {"title": article.title})
    return redirect("admin:knowledge_article_change", article.pk)


@require_POST
@manager_required
def experiment_promote(request: HttpRequest, pk: int) -> HttpResponse:
    """The chosen arm's version becomes the active one and the experiment ends (audited by the service)."""
    from tickets.models import AIExperiment
    from tickets.services import TicketRuleError, ai_versions

    experiment = get_object_or_404(AIExperiment.objects.select_related("version_a", "version_b"), pk=pk)
    try:
        experiment = ai_versions.ai_experiment_promote(
            user=request.user, experiment=experiment, arm=request.POST.get("arm", "")
        )
    except TicketRuleError as exc:
        context = {
            "page": "ai",
            "page_title": gettext("AI performance"),
            "title": gettext("Not promoted"),
            "error": exc,
        }
        return _render(request, "analytics/experiment_error.html", context, status=400)
    messages.success(
        request,
        gettext("Version “%(label)s” is now active; experiment “%(name)s” ended.")
        % {"label": experiment.winner.label, "name": experiment.name},
    )
    return redirect("analytics:ai")


# --- CSV exports ----------------------------------------------------------------------------------

DAILY_SERIES = ("automation", "escalation", "csat_share", "csat_count", "cost_per_ticket")
OVERVIEW_EXPORTS = [
    ("volume_by_channel", _("volume by channel")),
    ("volume_by_department", _("volume by department")),
    ("volume_by_category", _("volume by category")),
    ("first_response_distribution", _("first response times")),
    ("resolution_distribution", _("resolution times")),
    ("sla", _("SLA compliance")),
    ("daily", _("daily CSAT, automation, escalation, cost per ticket")),
    ("sentiment", _("sentiment")),
]


def _series_rows(days, series: dict[str, list]) -> Iterable[list]:
    names = list(series)
    yield ["day", *names]
    for i, day in enumerate(days):
        yield [day.isoformat(), *(series[name][i] for name in names)]


def _table(rows: list[dict]) -> Iterable[list]:
    if not rows:
        yield ["no data"]
        return
    yield list(rows[0])
    for row in rows:
        yield list(row.values())


EXPORTS: dict[str, Callable[[metrics.Filters], Iterable[list]]] = {
    "totals": lambda f: [["metric", "value"], *metrics.totals(f).items()],
    "volume_by_channel": lambda f: _series_rows(f.days, metrics.daily(f)["volume_by_channel"]),
    "volume_by_department": lambda f: _series_rows(f.days, metrics.daily(f)["volume_by_department"]),
    "volume_by_category": lambda f: _series_rows(f.days, metrics.counts_by_day(f, "category")),
    "first_response_distribution": lambda f: [["bucket", "tickets"], *metrics.first_response_distribution(f)],
    "resolution_distribution": lambda f: [["bucket", "tickets"], *metrics.resolution_distribution(f)],
    "sla": lambda f: _table(metrics.sla_compliance(f)),
    "daily": lambda f: _series_rows(
        f.days,
        {k: v for k, v in metrics.daily(f).items() if k not in ("days", "volume_by_channel", "volume_by_department")},
    ),
    "sentiment": lambda f: [["sentiment", "tickets"], *metrics.counts(f, "sentiment")],
    "agents": lambda f: _table(metrics.agents(f)),
    "escalation_reasons": lambda f: [["reason", "tickets"], *metrics.counts(f, "escalation_reason")],
    "calibration": lambda f: _table(metrics.ai_summary(f)["calibration"]),
    "corrections": lambda f: _table(metrics.ai_summary(f)["corrections"]),
    "ai_runs": lambda f: _table(metrics.ai_runs(f)),
    "savings": lambda f: [["metric", "value"], *savings.savings(f).items()],
}


@require_GET
@manager_required
def export(request: HttpRequest, name: str) -> HttpResponse:
    if name == "knowledge_gaps":
        rows = [["group", "questions", "departments", "examples", "first seen", "last seen"]] + [
            [g.label, g.size, "; ".join(g.departments), " | ".join(g.examples), g.first_seen, g.last_seen]
            for g in KnowledgeGap.objects.all()
        ]
    elif name in EXPORTS:
        form, f = _filters(request)
        if f is None:
            return HttpResponse(
                gettext("Invalid filters: %(errors)s") % {"errors": "; ".join(form.non_field_errors())}, status=400
            )
        rollup.ensure_fresh()
        with metrics.reading():
            rows = list(EXPORTS[name](f))
    else:
        raise Http404("No such export.")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="supportflow-{name}.csv"'
    writer = csv.writer(response)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return response


def console_user_required(view: Callable) -> Callable:
    """Agents and managers (the console's users); anyone else signed in gets a 403, anonymous visitors sign in."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not user_is_agent(request.user):
            return _render(request, "analytics/forbidden.html", {"title": gettext("Not allowed")}, status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _same_site(request: HttpRequest, url: str) -> str:
    allowed = {request.get_host()}
    if url_has_allowed_host_and_scheme(url, allowed_hosts=allowed, require_https=request.is_secure()):
        return url
    return reverse("admin:index")


@require_GET
@console_user_required
def alerts_banner(request: HttpRequest) -> HttpResponse:
    """The console's AI alerts banner as a fragment (empty when there is nothing this user should see);
    the page it is shown on (``Referer``) is where the dismiss form returns to."""
    shown = alerts.alerts_for_user(user=request.user, session=request.session)
    if shown is None:
        response = HttpResponse("")
    else:
        back = _same_site(request, request.headers.get("Referer", ""))
        response = render(request, "admin/sf_alerts.html", {"alerts": shown, "next": back})
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@console_user_required
def alerts_dismiss(request: HttpRequest) -> HttpResponse:
    """Hide the console's AI alerts banner for this session, until the alerts change."""
    alerts.alerts_dismiss(user=request.user, session=request.session)
    return redirect(_same_site(request, request.POST.get("next", "")))
