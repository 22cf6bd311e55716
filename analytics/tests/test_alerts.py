"""AI alerts (analytics/alerts.py): the Prometheus rules generated from the ALERT_* settings and checked
here by a small parser (NOT promtool, which cannot be installed offline: structure, a PromQL grammar for
the subset we write, range vectors only where a function takes one, and every metric one /metrics really
serves), and the console banner computed from real rows, shown only to those who may see it."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import redis
import yaml
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from analytics import alerts
from supportflow import metrics
from tickets import services
from tickets.ai import runs
from tickets.models import Ticket
from tickets.tests.factories import UserFactory, make_manager, make_ticket

# --- a PromQL check for the subset our rules use ------------------------------------------------------------

AGGREGATIONS = {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile"}
RANGE_FUNCTIONS = {"rate", "irate", "increase", "delta", "avg_over_time", "max_over_time", "min_over_time"}
FUNCTIONS = RANGE_FUNCTIONS | {"histogram_quantile", "abs", "absent", "clamp_min", "clamp_max", "scalar", "vector"}
COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?)(?![A-Za-z_])|(?P<duration>\[\d+[smhdwy]\])"
    r'|(?P<string>"(?:[^"\\]|\\.)*")|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)'
    r"|(?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>=(){},]))"
)
RULE_DURATION = re.compile(r"\d+[smhdwy]")


class PromQLError(ValueError):
    pass


class PromQL:
    """A recursive-descent parser: ``PromQL(expr).metrics`` are the metric names it selects; any syntax
    it does not know, an unknown function, or a range vector where an instant one is needed raises."""

    LEVELS = (({"or"}), ({"and", "unless"}), COMPARISONS, {"+", "-"}, {"*", "/", "%"}, {"^"})

    def __init__(self, text: str):
        self.tokens, pos = [], 0
        text = text.strip()
        while pos < len(text):
            match = TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                raise PromQLError(f"cannot read {text[pos : pos + 20]!r}")
            self.tokens.append((match.lastgroup, match.group(match.lastgroup)))
            pos = match.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.i, self.metrics = 0, set()
        if self._expr(0) == "range":
            raise PromQLError("a rule must be an instant vector, not a range")
        if self.i != len(self.tokens):
            raise PromQLError(f"unexpected {self.tokens[self.i][1]!r}")

    def _peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise PromQLError(f"ended where {expected or 'more'} was expected")
        token = self.tokens[self.i]
        if expected is not None and token[1] != expected:
            raise PromQLError(f"{expected!r} expected, got {token[1]!r}")
        self.i += 1
        return token

    def _expr(self, level: int) -> str:
        if level == len(self.LEVELS):
            return self._unary()
        kind = self._expr(level + 1)
        while self._peek() in self.LEVELS[level]:
            self._take()
            if self._peek() == "bool":
                self._take()
            right = self._expr(level + 1)
            if "range" in (kind, right):
                raise PromQLError("a range vector cannot be an operand")
            kind = "instant"
        return kind

    def _unary(self) -> str:
        if self._peek() in {"-", "+"}:
            self._take()
        return self._primary()

    def _labels(self) -> None:
        self._take("(")
        while self._peek() != ")":
            if self._take()[0] != "name":
                raise PromQLError("a label name expected")
            if self._peek() == ",":
                self._take()
        self._take(")")

    def _primary(self) -> str:
        kind, value = self._take()
        if kind == "number":
            return "instant"
        if value == "(":
            inner = self._expr(0)
            self._take(")")
            return inner
        if kind != "name":
            raise PromQLError(f"unexpected {value!r}")
        if value in AGGREGATIONS:
            if self._peek() in {"by", "without"}:
                self._take()
                self._labels()
            self._take("(")
            if value in {"topk", "bottomk", "quantile"}:
                self._expr(0)
                self._take(",")
            if self._expr(0) == "range":
                raise PromQLError(f"{value}() takes an instant vector")
            self._take(")")
            if self._peek() in {"by", "without"}:
                self._take()
                self._labels()
            return "instant"
        if self._peek() == "(":
            if value not in FUNCTIONS:
                raise PromQLError(f"unknown function {value}()")
            self._take("(")
            args = [self._expr(0)]
            while self._peek() == ",":
                self._take()
                args.append(self._expr(0))
            self._take(")")
            if (value in RANGE_FUNCTIONS) != (args[-1] == "range") or args[:-1].count("range"):
                raise PromQLError(f"{value}() and its arguments do not match (range vs instant)")
            return "instant"
        self.metrics.add(value)
        if self._peek() == "{":
            self._take("{")
            while self._peek() != "}":
                if self._take()[0] != "name" or self._take()[1] not in {"=", "!=", "=~", "!~"}:
                    raise PromQLError("a label matcher expected")
                if self._take()[0] != "string":
                    raise PromQLError("a quoted label value expected")
                if self._peek() == ",":
                    self._take()
            self._take("}")
        if self._peek() is not None and self.tokens[self.i][0] == "duration":
            self._take()
            return "range"
        return "instant"


@pytest.mark.parametrize(
    "expr",
    [
        "sum(rate(x_total))",  # rate needs a range
        "sum(x_total[5m])",  # a range where an instant vector is needed
        "sum(rate(x_total[5m])",  # unbalanced
        "sum(frobnicate(x_total[5m]))",  # unknown function
        "x_total{job=supportflow} > 1",  # unquoted label value
        "x_total > ",
        "sum(rate(x_total[5m])) / > 1",
    ],
)
def test_the_promql_check_rejects_bad_expressions(expr):
    with pytest.raises(PromQLError):
        PromQL(expr)


def test_the_promql_check_reads_good_expressions_and_their_metrics():
    parsed = PromQL(
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{k=~"5.."}[10m]))) > 15\n'
        "and sum(increase(b_total[60m])) >= 10"
    )
    assert parsed.metrics == {"a_bucket", "b_total"}


# --- the rules file ------------------------------------------------------------------------------------------


def _committed() -> dict:
    return yaml.safe_load(alerts.RULES_PATH.read_text())


def test_the_committed_rules_are_the_ones_generated_from_the_default_settings():
    assert alerts.RULES_PATH.read_text() == alerts.rules_yaml(alerts.Thresholds.from_settings())
    call_command("alert_rules", "--check")  # and the command agrees


def test_the_rules_follow_the_settings_and_the_check_says_when_the_file_is_stale(settings, tmp_path: Path):
    settings.ALERT_ESCALATION_RATE_ABOVE = 0.35
    settings.ALERT_WINDOW_MINUTES = 30
    settings.ALERT_AI_BACKLOG_ABOVE = 50

    with pytest.raises(CommandError, match="differs from the ALERT_"):
        call_command("alert_rules", "--check")
    target = tmp_path / "alerts.yml"
    call_command("alert_rules", "--output", str(target))

    rules = {rule["alert"]: rule for rule in yaml.safe_load(target.read_text())["groups"][0]["rules"]}
    assert "> 0.35" in rules["SupportFlowEscalationRateHigh"]["expr"]
    assert "[30m]" in rules["SupportFlowEscalationRateHigh"]["expr"]
    assert rules["SupportFlowAIQueueBacklog"]["expr"].strip() == 'max(supportflow_celery_queue_length{queue="ai"}) > 50'
    assert alerts.RULES_PATH.read_text() != target.read_text()  # the committed file was not touched


def test_the_rules_file_has_prometheus_rule_structure_and_every_alert_of_the_issue():
    document = _committed()
    assert list(document) == ["groups"]
    names = []
    for group in document["groups"]:
        assert set(group) == {"name", "rules"}
        assert group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert "for" not in rule or RULE_DURATION.fullmatch(rule["for"]), rule["alert"]
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert set(rule["annotations"]) == {"summary", "description"}
            for text in rule["annotations"].values():
                assert text.count("{{") == text.count("}}"), rule["alert"]
            names.append(rule["alert"])
    assert len(names) == len(set(names))
    assert {
        "SupportFlowAIConfidenceLow",
        "SupportFlowEscalationRateHigh",
        "SupportFlowAINoVotesHigh",
        "SupportFlowLLMBreakerOpen",
        "SupportFlowAIQueueBacklog",
    } <= set(names)


@pytest.fixture
def metrics_store(settings):
    """Counters of this test only: a fresh key prefix, removed afterwards."""
    settings.METRICS_KEY_PREFIX = f"sf:test:alerts:{id(settings)}:"
    metrics.reset_pause()
    yield
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = list(client.scan_iter(f"{settings.METRICS_KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _answer(ticket, *, confidence: float, send: bool) -> None:
    services.ai_reply_record(
        ticket=ticket,
        in_reply_to=ticket.messages.get(seq=1),
        body="Open Settings → Sync → Reset local cache [1].",
        citations=[],
        confidence=confidence,
        provider="local",
        model="extractive",
        gate={"threshold": 0.6},
        send=send,
        escalation_reason="AI not confident enough to answer",
    )


@pytest.mark.django_db
def test_every_rule_parses_and_selects_only_metrics_that_metrics_serves(
    client, metrics_store, department, django_capture_on_commit_callbacks
):
    """After real events (tickets, an SLA breach, answers sent and drafted, an AI run, a vote) the scrape has samples
    for every business metric a rule selects; ``up`` is Prometheus's own."""
    late = make_ticket(department=department)
    Ticket.objects.filter(pk=late.pk).update(first_response_due_at=timezone.now() - dt.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        answered, drafted = make_ticket(department=department), make_ticket(department=department)
        _answer(answered, confidence=0.82, send=True)
        _answer(drafted, confidence=0.31, send=False)
        run, _ = runs.ai_run_begin(key=f"reply:alerts:{answered.pk}", kind="reply", provider="local", ticket=answered)
        runs.ai_run_finish(run=run, succeeded=True, latency_ms=40)
        assert services.ticket_sla_sweep() == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.message_record_feedback(message=answered.messages.get(author_kind="ai"), helpful=False)
    client.get("/healthz")
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    samples = {s.name for f in text_string_to_metric_families(response.content.decode()) for s in f.samples}

    selected = set()
    for group in _committed()["groups"]:
        for rule in group["rules"]:
            selected |= PromQL(rule["expr"]).metrics
    assert selected - samples == {"up"}
    assert {
        "supportflow_ai_answer_confidence_sum",
        "supportflow_ai_answer_confidence_count",
        "supportflow_ai_answer_votes_total",
        "supportflow_escalations_total",
        "supportflow_tickets_created_total",
    } <= selected


# --- the console banner ---------------------------------------------------------------------------------------


@pytest.fixture
def fresh_alerts(settings):
    """Conditions computed anew for this test, judged from five samples on."""
    settings.ALERT_MIN_SAMPLES = 5
    cache.delete(alerts.CACHE_KEY)
    yield settings
    cache.delete(alerts.CACHE_KEY)


@pytest.fixture
def ai_queue(settings):
    client = redis.Redis.from_url(settings.REDIS_BROKER_URL)
    client.delete(alerts.AI_QUEUE)
    yield client
    client.delete(alerts.AI_QUEUE)
    client.close()


def _tickets_escalated(department, agent, *, created: int, escalated: int) -> None:
    tickets = [make_ticket(department=department) for _ in range(created)]
    for ticket in tickets[:escalated]:
        services.ticket_escalate(ticket=ticket, reason="Needs a specialist", actor=agent)


def _banner(client: Client) -> str | None:
    """The banner as the console shows it: the page's empty slot, filled by alerts.js from the fragment."""
    response = client.get(reverse("admin:index"), follow=True)  # agents land on their inbox
    assert response.status_code == 200
    page = response.content.decode()
    if client.session.get("_auth_user_id") and '<div id="sf-alerts" role="status"' not in page:
        return None  # no slot: not a console user
    fragment = client.get(reverse("analytics:alerts-banner"), HTTP_REFERER="http://testserver/admin/")
    if fragment.status_code == 403:
        return None  # staff without a console role: alerts.js shows nothing
    assert fragment.status_code == 200
    assert fragment["Cache-Control"] == "private, no-store"
    html = fragment.content.decode()
    return html if html.strip() else None


@pytest.mark.django_db
def test_managers_see_the_escalation_alert_with_a_link_to_the_ai_page(client, fresh_alerts, department, agent):
    _tickets_escalated(department, agent, created=5, escalated=2)  # 40 % > 20 %
    client.force_login(make_manager())

    banner = _banner(client)

    assert banner is not None
    assert 'aria-labelledby="sf-alerts-title"' in banner
    assert 'data-alert="escalation"' in banner
    assert "40 % of new tickets were handed to a person in the last 60 minutes (alert above 20 %)." in banner
    assert f'href="{reverse("analytics:ai")}"' in banner
    assert "csrfmiddlewaretoken" in banner


@pytest.mark.django_db
def test_no_banner_at_or_below_the_threshold(client, fresh_alerts, department, agent):
    _tickets_escalated(department, agent, created=5, escalated=1)  # 20 %: not above
    client.force_login(make_manager())

    assert _banner(client) is None


@pytest.mark.django_db
def test_no_verdict_from_too_few_tickets(client, fresh_alerts, department, agent):
    _tickets_escalated(department, agent, created=4, escalated=4)  # 100 %, but only 4 < 5 tickets
    client.force_login(make_manager())

    assert _banner(client) is None


@pytest.mark.django_db
def test_agents_see_only_the_ai_backlog_and_other_staff_nothing(client, fresh_alerts, department, agent, ai_queue):
    fresh_alerts.ALERT_AI_BACKLOG_ABOVE = 2
    _tickets_escalated(department, agent, created=5, escalated=5)
    client.force_login(agent)
    assert _banner(client) is None  # the escalation rate is the managers' business

    cache.delete(alerts.CACHE_KEY)
    ai_queue.rpush(alerts.AI_QUEUE, "a", "b", "c")
    banner = _banner(client)
    assert banner is not None
    assert 'data-alert="backlog"' in banner
    assert 'data-alert="escalation"' not in banner
    assert "3 customer messages are waiting for the AI." in banner
    assert reverse("analytics:ai") not in banner

    client.force_login(UserFactory(is_staff=True))  # staff, but neither agent nor manager
    assert _banner(client) is None


@pytest.mark.django_db
def test_low_confidence_no_votes_and_an_open_breaker_reach_managers(
    client, fresh_alerts, department, django_capture_on_commit_callbacks
):
    from supportflow.llm import breaker

    tickets = [make_ticket(department=department) for _ in range(5)]
    for ticket in tickets:
        _answer(ticket, confidence=0.5, send=True)  # 50 % < 60 %
    services.ai_reply_record(  # a clarifying question carries no confidence: not in the average
        ticket=make_ticket(department=department),
        in_reply_to=Ticket.objects.latest("pk").messages.get(seq=1),
        body="Which device do you use?",
        citations=[],
        confidence=0.0,
        provider="local",
        model="extractive",
        gate={},
        send=True,
        kind="clarify",
    )
    for ticket in tickets[:2]:  # 2 of 5 votes "No": 40 % > 30 %
        services.message_record_feedback(message=ticket.messages.get(author_kind="ai"), helpful=False)
    for ticket in tickets[2:]:
        services.message_record_feedback(message=ticket.messages.get(author_kind="ai"), helpful=True)
    for _ in range(fresh_alerts.LLM_BREAKER_FAILURES):
        breaker.record_failure(probe=False, reason="test")
    try:
        client.force_login(make_manager())
        banner = _banner(client)
    finally:
        breaker.reset()

    assert banner is not None
    assert re.findall(r'data-alert="(\w+)"', banner) == ["confidence", "no_votes", "breaker"]
    assert "Average confidence of the AI's answers is 50 % over the last 60 minutes (alert below 60 %)." in banner
    assert "40 % of customers' votes on AI answers in the last 60 minutes were “No” (alert above 30 %)." in banner


@pytest.mark.django_db
def test_the_figures_are_cached_so_a_page_costs_one_cache_read(
    fresh_alerts, department, agent, django_assert_num_queries
):
    _tickets_escalated(department, agent, created=5, escalated=2)
    first = alerts.alerts_current()
    _tickets_escalated(department, agent, created=5, escalated=0)  # now 2 of 10: below, but cached

    with django_assert_num_queries(0):
        assert alerts.alerts_current() == first
    assert [alert["key"] for alert in first["alerts"]] == ["escalation"]


@pytest.mark.django_db
def test_dismissing_hides_the_banner_for_the_session_until_the_alerts_change(fresh_alerts, department, agent, ai_queue):
    _tickets_escalated(department, agent, created=5, escalated=2)
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_manager())
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', _banner(client)).group(1)

    refused = client.post(reverse("analytics:alerts-dismiss"), {"next": "/admin/"})
    assert refused.status_code == 403  # no CSRF token
    assert _banner(client) is not None

    response = client.post(
        reverse("analytics:alerts-dismiss"), {"next": "https://evil.example/", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    assert _banner(client) is None

    fresh_alerts.ALERT_AI_BACKLOG_ABOVE = 0
    ai_queue.rpush(alerts.AI_QUEUE, "a")
    cache.delete(alerts.CACHE_KEY)
    banner = _banner(client)  # a new alert: shown again, with the old one
    assert banner is not None
    assert 'data-alert="backlog"' in banner
    assert 'data-alert="escalation"' in banner


@pytest.mark.django_db
def test_only_console_users_may_dismiss(client, fresh_alerts):
    client.force_login(UserFactory(is_staff=False))
    response = client.post(reverse("analytics:alerts-dismiss"), {"next": "/admin/"})
    assert response.status_code == 403
    assert alerts.SESSION_KEY not in client.session


@pytest.mark.django_db
def test_the_banner_speaks_german(fresh_alerts, department, agent):
    _tickets_escalated(department, agent, created=5, escalated=2)
    client = Client(HTTP_ACCEPT_LANGUAGE="de")
    client.force_login(make_manager())

    banner = _banner(client)

    assert banner is not None
    assert "KI-Warnungen" in banner
    assert "40 % der neuen Tickets wurden in den letzten 60 Minuten an eine Person übergeben" in banner
