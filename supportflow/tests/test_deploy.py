"""The monitoring profile: Prometheus and Grafana configs load, and every metric their alerts and panels
query is one that /metrics really exposes (a renamed metric would otherwise fail silently). Compose scale-out:
web behind a proxy that passes websockets, every Redis role URL given to every app service."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from supportflow import redis_roles

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


# --- compose: scaling and Redis roles (docs/deploy.md) ------------------------------------------------


def _nginx_blocks(text: str, opener: str) -> list[list[list[str]]]:
    """The directives (split into words) of every ``opener { ... }`` block without nested blocks."""
    text = re.sub(r"#[^\n]*", "", text)
    bodies = re.findall(re.escape(opener) + r"\s*\{([^{}]*)\}", text)
    return [[d.split() for d in body.split(";") if d.strip()] for body in bodies]


def test_compose_web_has_no_fixed_host_port_and_the_proxy_passes_websockets_to_every_replica():
    services = _load(ROOT / "compose.yaml")["services"]
    assert "ports" not in services["web"]  # so `docker compose up --scale web=3` cannot collide on a port
    assert services["proxy"]["ports"] == ["${HTTP_PORT:-8000}:8000"]
    assert "profiles" not in services["proxy"]
    assert services["proxy"]["depends_on"]["web"] == {"condition": "service_healthy"}
    mount = next(v for v in services["proxy"]["volumes"] if ":/etc/nginx/conf.d/default.conf" in v)
    config = (ROOT / mount.split(":")[0]).read_text()

    [upstream] = _nginx_blocks(config, "upstream supportflow_web")
    assert ["server", "web:8000", "resolve"] in upstream  # replicas added later are found
    assert re.search(r"^resolver 127\.0\.0\.11\b", config, re.MULTILINE)  # Docker's DNS
    version = services["proxy"]["image"].removeprefix("nginx:").split("-")[0]
    assert tuple(int(part) for part in version.split(".")) >= (1, 27, 3)  # the first open-source `resolve`
    [upgrade_map] = _nginx_blocks(config, "map $http_upgrade $connection_upgrade")
    assert ["default", "upgrade"] in upgrade_map
    forwarded = [
        ["proxy_pass", "http://supportflow_web"],
        ["proxy_set_header", "Host", "$host"],
        ["proxy_set_header", "X-Forwarded-For", "$proxy_add_x_forwarded_for"],
    ]
    [websockets] = _nginx_blocks(config, "location /ws/")
    for directive in [
        *forwarded,
        ["proxy_set_header", "Upgrade", "$http_upgrade"],
        ["proxy_set_header", "Connection", "$connection_upgrade"],
    ]:
        assert directive in websockets, directive
    [pages] = _nginx_blocks(config, "location /")
    assert all(directive in pages for directive in forwarded)
    assert re.search(r"^\s*proxy_http_version 1\.1;", config, re.MULTILINE)  # keepalive and upgrades need 1.1
    # the app believes exactly the one hop the proxy adds, so rate limits count clients, not the proxy
    assert services["web"]["environment"]["TRUSTED_PROXY_COUNT"] == "${TRUSTED_PROXY_COUNT:-1}"


def test_compose_gives_every_app_service_every_redis_role_url_defaulting_to_one_server():
    services = _load(ROOT / "compose.yaml")["services"]
    app_services = {name for name, s in services.items() if s.get("image") == "supportflow:local"}
    assert app_services >= {"migrate", "web", "worker-ai", "worker", "beat"}
    defaults = {"broker": 0, "cache": 1, "channels": 2, "locks": 0}  # what settings.py derives from REDIS_URL
    for name in sorted(app_services):
        env = services[name]["environment"]
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        for role in redis_roles.ROLES:
            setting = f"REDIS_{role.upper()}_URL"
            assert env[setting] == f"${{{setting}:-redis://redis:6379/{defaults[role]}}}", (name, setting)
