"""The monitoring profile: Prometheus and Grafana configs load, and every metric their alerts and panels
query is one that /metrics really exposes (a renamed metric would otherwise fail silently)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
METRIC_NAME = re.compile(r"\b(?:supportflow|django)_[a-zA-Z0-9_]+\b")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def _load(path: Path):
    return yaml.safe_load(path.read_text())


def _alert_rules() -> list[dict]:
    return [rule for group in _load(DEPLOY / "prometheus" / "alerts.yml")["groups"] for rule in group["rules"]]


def _dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "dashboards" / "supportflow.json").read_text())


def _panel_queries(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


@pytest.fixture
def exposed_names(client, db) -> set[str]:
    """Every sample name /metrics can produce, from the families it declares (with or without samples)."""
    client.get("/healthz")  # so the request histograms have a child
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.content.decode()):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def test_compose_monitoring_profile_runs_pinned_prometheus_and_grafana_on_our_configs():
    compose = _load(ROOT / "compose.yaml")
    for name in ("prometheus", "grafana"):
        service = compose["services"][name]
        assert service["profiles"] == ["monitoring"]
        # a pinned release, by digest too (test_install.py checks the digest of every compose image)
        assert re.fullmatch(r"[a-z/]+:v?\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", service["image"]), service["image"]
        for volume in service["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_dir(), source
    assert "metrics_token" in compose["services"]["prometheus"]["secrets"]
    assert compose["secrets"]["metrics_token"] == {"environment": "METRICS_TOKEN"}
    for name in ("web", "worker", "db", "redis"):
        assert "profiles" not in compose["services"][name]  # the app itself starts without the profile


def test_prometheus_scrapes_the_web_service_with_the_token_file():
    config = _load(DEPLOY / "prometheus" / "prometheus.yml")
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "supportflow")
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["web:8000"]}]
    assert job["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/metrics_token"}
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]  # deploy/prometheus is mounted there


def test_alert_rules_cover_what_operators_need_and_are_complete():
    rules = _alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert {
        "SupportFlowHighErrorRate",
        "SupportFlowAILatencyHigh",
        "SupportFlowLLMBreakerOpen",
        "SupportFlowSLABreaches",
        "SupportFlowAIQueueBacklog",
        "SupportFlowQueueBacklog",
    } <= set(names)
    for rule in rules:
        assert rule["expr"].strip(), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_grafana_provisioning_points_at_the_dashboard_and_datasource():
    datasource = _load(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    provider = _load(DEPLOY / "grafana" / "provisioning" / "dashboards" / "supportflow.yml")["providers"][0]
    dashboard = _dashboard()

    assert datasource["url"] == "http://prometheus:9090"
    assert provider["options"]["path"] == "/etc/grafana/dashboards"  # where compose mounts deploy/grafana/dashboards
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
            assert panel["targets"], panel["title"]
            assert all(target["datasource"]["uid"] == datasource["uid"] for target in panel["targets"])


def test_every_metric_in_alerts_and_dashboard_is_exposed(exposed_names):
    queries = [rule["expr"] for rule in _alert_rules()] + _panel_queries(_dashboard())
    referenced = {name for query in queries for name in METRIC_NAME.findall(query)}

    assert referenced  # the pattern found something
    assert referenced - exposed_names == set()


def test_the_dashboard_shows_every_business_metric(exposed_names):
    shown = {name for query in _panel_queries(_dashboard()) for name in METRIC_NAME.findall(query)}
    business = {name for name in exposed_names if name.startswith("supportflow_") and not name.endswith("_created")}
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in business}
    assert {re.sub(r"_(bucket|sum|count)$", "", name) for name in shown} >= families
