"""The Kubernetes manifests (deploy/k8s): both overlays render with the real kustomize (``kubectl kustomize``,
or the standalone ``kustomize``), every rendered object validates offline against the Kubernetes API schemas
(``kubernetes-validate``), and the properties an operator relies on hold in what would be applied: limits,
probes on the app's real endpoints, one beat, the migration Job, images by digest, secrets by reference,
budgets and autoscalers that point at real workloads, the network policy, the queues the workers consume."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import environ
import kubernetes_validate
import psycopg
import pytest
import yaml
from django.conf import settings
from django.db import connection
from django.urls import resolve

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
# The oldest Kubernetes the manifests claim (preStop `sleep` is on by default from 1.30) and the newest
# release kubernetes-validate ships schemas for.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
SECRET_NAME = "supportflow-secrets"
SECRET_LIKE = re.compile(
    r"(SECRET|TOKEN|PASSWORD|_KEY$|KEY_ID$|^DATABASE_URL$|^REDIS_URL$|^EMAIL_URL$|^IMAP_URL$|WEBHOOK_URL)"
)
WORKLOADS = ("Deployment", "StatefulSet", "Job")
APP = {"app.kubernetes.io/name": "supportflow"}


def _kustomize_command(path: Path) -> list[str]:
    """kubectl on PATH, else the one `make test` installs into the virtualenv (tools/install_kubectl.py)."""
    kubectl = shutil.which("kubectl") or shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if kubectl:
        return [kubectl, "kustomize", str(path)]
    if shutil.which("kustomize"):
        return ["kustomize", "build", str(path)]
    pytest.fail(
        "no kubectl or kustomize: `make test` installs kubectl (tools/install_kubectl.py); run the tests through it"
    )


def render(path: Path) -> list[dict]:
    result = subprocess.run(_kustomize_command(path), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request) -> tuple[str, list[dict]]:
    return request.param, render(K8S / "overlays" / request.param)


@pytest.fixture(scope="module")
def keda_objects(tmp_path_factory) -> list[dict]:
    """The production overlay with the optional KEDA component, as an operator would add it."""
    folder = tmp_path_factory.mktemp("keda-overlay")
    (folder / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(K8S / "overlays" / "production", folder)],
                "components": [os.path.relpath(K8S / "components" / "keda-ai", folder)],
            }
        )
    )
    return render(folder)


def find(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = find(objects, kind, name)
    return found


def pod_specs(objects: list[dict]) -> list[tuple[dict, dict]]:
    return [(o, o["spec"]["template"]["spec"]) for o in objects if o["kind"] in WORKLOADS]


def containers(pod: dict) -> list[dict]:
    return pod.get("initContainers", []) + pod["containers"]


def app_pods(objects: list[dict]) -> list[tuple[dict, dict]]:
    return [(o, pod) for o, pod in pod_specs(objects) if o["metadata"]["labels"].items() >= APP.items()]


def selects(selector: dict, labels: dict) -> bool:
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return True
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        present = labels.get(expression["key"])
        if expression["operator"] == "In" and present not in expression["values"]:
            return False
        if expression["operator"] == "NotIn" and present in expression["values"]:
            return False
        if expression["operator"] == "Exists" and present is None:
            return False
    return True


def config_data(objects: list[dict]) -> dict[str, str]:
    (config,) = [o for o in find(objects, "ConfigMap") if o["metadata"]["name"].startswith("supportflow-config-")]
    return config["data"]


def worker_args(objects: list[dict], name: str) -> list[str]:
    return one(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]["args"]


# --- Rendering and schema validation.


def test_every_rendered_object_is_valid_for_the_kubernetes_api(overlay):
    name, objects = overlay
    assert len(objects) > 15, name
    for version in KUBERNETES_VERSIONS:
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(
                    f"{name}: {obj['kind']}/{obj['metadata']['name']} on {version}: {error.message} at {error.path}"
                )


def test_validation_catches_a_broken_manifest():
    """The validator really checks: a misspelt field and a wrong type are refused."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "replicas": "three",
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "x", "imag": "y"}]}},
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_keda_component_replaces_the_ai_hpa_with_a_scaled_object_on_the_ai_list(keda_objects):
    assert find(keda_objects, "HorizontalPodAutoscaler", "supportflow-worker-ai") == []
    assert find(keda_objects, "HorizontalPodAutoscaler", "supportflow-web")  # web keeps its CPU autoscaler
    scaled = one(keda_objects, "ScaledObject", "supportflow-worker-ai")
    assert one(keda_objects, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == "ai"
    auth = one(keda_objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert {ref["name"] for ref in auth["spec"]["secretTargetRef"]} == {SECRET_NAME}
    assert {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]} == {"address", "password"}
    for obj in keda_objects:
        if not obj["apiVersion"].startswith("keda.sh/"):  # CRDs: no schema ships for them
            kubernetes_validate.validate(obj, KUBERNETES_VERSIONS[-1], strict=True)


# --- Workloads.


def test_every_container_has_requests_and_limits(overlay):
    name, objects = overlay
    for obj, pod in pod_specs(objects):
        for container in containers(pod):
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= resources.get(kind, {}).keys(), (
                    name,
                    obj["metadata"]["name"],
                    container["name"],
                )


def test_every_pod_runs_non_root_read_only_without_capabilities(overlay):
    name, objects = overlay
    for obj, pod in pod_specs(objects):
        where = (name, obj["metadata"]["name"])
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        for container in containers(pod):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (*where, container["name"])
            assert context["allowPrivilegeEscalation"] is False, (*where, container["name"])
            assert context["capabilities"] == {"drop": ["ALL"]}, (*where, container["name"])
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, (*where, container["name"])
    for obj, pod in app_pods(objects):
        assert pod["securityContext"]["runAsUser"] == 10001, obj["metadata"]["name"]  # the Dockerfile's user
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        for container in containers(pod):
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            scratch = mounts["/tmp"]  # noqa: S108 (the mount path in the manifest, not a file we create)
            assert "emptyDir" in volumes[scratch], (obj["metadata"]["name"], container["name"])


def test_namespaces_enforce_the_restricted_pod_security_standard(overlay):
    _name, objects = overlay
    (namespace,) = find(objects, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {o["metadata"]["namespace"] for o in objects if o["kind"] != "Namespace"} == {namespace["metadata"]["name"]}


def test_web_probes_use_the_apps_health_endpoints_with_an_allowed_host(overlay):
    name, objects = overlay
    web = one(objects, "Deployment", "supportflow-web")["spec"]["template"]["spec"]["containers"][0]
    port_names = {port["name"]: port["containerPort"] for port in web["ports"]}
    allowed = config_data(objects)["ALLOWED_HOSTS"].split(",")
    expected = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in expected.items():
        check = web[probe]["httpGet"]
        assert check["path"] == path, (name, probe)
        assert check["port"] in port_names, (name, probe)
        host = {header["name"]: header["value"] for header in check["httpHeaders"]}["Host"]
        assert host in allowed, (name, probe, host)  # else Django answers 400 and the pod never gets ready
        assert resolve(path).url_name == path.strip("/")


def test_web_pods_carry_prometheus_scrape_annotations_for_metrics(overlay):
    _, objects = overlay
    template = one(objects, "Deployment", "supportflow-web")["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert resolve(annotations["prometheus.io/path"]).url_name == "prometheus-django-metrics"
    ports = [port["containerPort"] for port in template["spec"]["containers"][0]["ports"]]
    assert int(annotations["prometheus.io/port"]) in ports


def test_one_beat_that_never_overlaps_itself_and_no_autoscaler_on_it(overlay):
    _name, objects = overlay
    beat = one(objects, "Deployment", "supportflow-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    assert "supportflow.beat:SingleBeatScheduler" in beat["spec"]["template"]["spec"]["containers"][0]["args"]
    targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in find(objects, "HorizontalPodAutoscaler")}
    assert "supportflow-beat" not in targets


def test_a_migration_job_runs_migrate_and_deployments_wait_for_it(overlay):
    _name, objects = overlay
    job = one(objects, "Job", "supportflow-migrate")
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["args"] == ["migrate"]  # docker/entrypoint.sh: migrate + periodic tasks
    assert "migrate" in (ROOT / "docker" / "entrypoint.sh").read_text()
    for deployment in find(objects, "Deployment"):
        if deployment["metadata"]["labels"].items() >= APP.items():
            (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
            assert "manage.py migrate --check" in init["args"][0], deployment["metadata"]["name"]
            assert init["image"] == pod["containers"][0]["image"]


def test_the_workers_consume_every_celery_queue_and_the_ai_worker_only_ai(overlay):
    _name, objects = overlay
    ai = worker_args(objects, "supportflow-worker-ai")
    housekeeping = worker_args(objects, "supportflow-worker-housekeeping")
    assert ai[ai.index("--queues") + 1] == "ai"
    consumed = {"ai", *housekeeping[housekeeping.index("--queues") + 1].split(",")}
    assert consumed == {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert "ai" not in housekeeping[housekeeping.index("--queues") + 1].split(",")


def test_args_expand_only_variables_the_pod_defines(overlay):
    """``$(WEB_WORKERS)`` and friends come from the ConfigMap; a typo would reach the process verbatim."""
    name, objects = overlay
    for obj, pod in pod_specs(objects):
        for container in containers(pod):
            defined = {env["name"] for env in container.get("env", [])}
            for source in container.get("envFrom", []):
                generated = [o["metadata"]["name"] for o in find(objects, "ConfigMap")]
                assert source["configMapRef"]["name"] in generated, (name, obj["metadata"]["name"])
                defined |= config_data(objects).keys()
            texts = [*container.get("args", []), *(env.get("value", "") for env in container.get("env", []))]
            for text in texts:
                for variable in re.findall(r"\$\(([A-Z0-9_]+)\)", text):
                    assert variable in defined, (name, obj["metadata"]["name"], container["name"], variable)


def test_every_configured_setting_is_one_the_app_reads(overlay):
    name, objects = overlay
    source = (ROOT / "supportflow" / "settings.py").read_text()
    args = " ".join(" ".join(c.get("args", [])) for _, pod in pod_specs(objects) for c in containers(pod))
    for key in config_data(objects):
        assert f'"{key}"' in source or f"$({key})" in args, (name, key)


POD_IP = "10.1.2.3"


def container_environment(container: dict, config: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """The environment the kubelet gives ``container``: envFrom first, then env in order, ``$(VAR)`` expanded
    from what is defined so far, the pod IP from the downward API, missing optional secrets left out."""
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environment.update(config)
    for variable in container.get("env", []):
        source = variable.get("valueFrom", {})
        if "value" in variable:
            environment[variable["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: environment.get(m[1], m[0]), variable["value"]
            )
        elif source.get("fieldRef", {}).get("fieldPath") == "status.podIP":
            environment[variable["name"]] = POD_IP
        elif source.get("secretKeyRef", {}).get("key") in secrets:
            environment[variable["name"]] = secrets[source["secretKeyRef"]["key"]]
    return environment


@pytest.mark.django_db
def test_the_web_pods_settings_let_probes_and_a_scrape_by_pod_address_through(client, settings):
    """Run the production web container's own settings through the app: the probes' ``Host: localhost`` and
    Prometheus scraping the pod by IP (over plain HTTP, behind SECURE_SSL) are answered; other hosts are not."""
    objects = render(K8S / "overlays" / "production")
    web = one(objects, "Deployment", "supportflow-web")["spec"]["template"]
    environment = container_environment(web["spec"]["containers"][0], config_data(objects), {"METRICS_TOKEN": "t0k"})
    settings.ALLOWED_HOSTS = environ.Env.parse_value(environment["ALLOWED_HOSTS"], list)
    settings.METRICS_TOKEN = environment["METRICS_TOKEN"]
    assert environ.Env.parse_value(environment["SECURE_SSL"], bool) is True
    settings.SECURE_SSL_REDIRECT = True
    annotations = web["metadata"]["annotations"]

    for probe in ("livenessProbe", "readinessProbe"):
        check = web["spec"]["containers"][0][probe]["httpGet"]
        host = {header["name"]: header["value"] for header in check["httpHeaders"]}["Host"]
        assert client.get(f"/{check['path'].lstrip('/')}", HTTP_HOST=host).status_code == 200, probe
    scrape = client.get(
        annotations["prometheus.io/path"],
        HTTP_HOST=f"{POD_IP}:{annotations['prometheus.io/port']}",
        HTTP_AUTHORIZATION="Bearer t0k",
        REMOTE_ADDR="10.9.9.9",
    )
    assert scrape.status_code == 200
    assert b"supportflow_celery_queue_length" in scrape.content  # what the ai autoscaler reads
    assert client.get("/healthz", HTTP_HOST="10.1.2.4:8000").status_code == 400  # another address: refused
    assert client.get("/chat/", HTTP_HOST="support.example.com").status_code == 301  # the public site: HTTPS only


def test_the_wait_for_migrations_gate_opens_only_on_a_migrated_database(db):
    """The init container's check, run for real: non-zero on an empty database, zero on the migrated test one."""
    objects = render(K8S / "overlays" / "production")
    (init,) = one(objects, "Deployment", "supportflow-web")["spec"]["template"]["spec"]["initContainers"]
    check = re.search(r"until (.+?) >/dev/null;", init["args"][0])[1].split()
    assert check[:3] == ["python", "manage.py", "migrate"]
    database = connection.settings_dict  # the test database, created and migrated for the session
    server = f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:{database['PORT']}"

    def gate(name: str) -> int:
        environment = {**os.environ, "DATABASE_URL": f"{server}/{name}", "SECRET_KEY": "k8s-test"}
        return subprocess.run([sys.executable, *check[1:]], cwd=ROOT, env=environment, timeout=300).returncode

    with psycopg.connect(f"{server}/{database['NAME']}", autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS sf_k8s_unmigrated")
        admin.execute("CREATE DATABASE sf_k8s_unmigrated")
        try:
            assert gate("sf_k8s_unmigrated") != 0
        finally:
            admin.execute("DROP DATABASE sf_k8s_unmigrated")
    assert gate(database["NAME"]) == 0


# --- Images and secrets.


def test_every_image_is_pinned_by_digest(overlay):
    name, objects = overlay
    images = [c["image"] for _, pod in pod_specs(objects) for c in containers(pod)]
    assert images
    for image in images:
        reference, _, digest = image.partition("@")
        assert DIGEST.fullmatch(digest), (name, image)
        assert not reference.endswith(":latest"), (name, image)


def test_secrets_come_only_by_reference_to_the_operators_secret(overlay):
    name, objects = overlay
    assert find(objects, "Secret") == []  # the operator creates it; applying the overlay never overwrites it
    example = yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text())
    referenced = set()
    for obj, pod in pod_specs(objects):
        for container in containers(pod):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == SECRET_NAME, (name, env["name"])
                    referenced.add(ref["key"])
                elif SECRET_LIKE.search(env["name"]):
                    pytest.fail(f"{name}: {obj['metadata']['name']} sets {env['name']} without a secretKeyRef")
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "METRICS_TOKEN", "OPENAI_API_KEY"} <= referenced
    assert referenced <= example["stringData"].keys()  # the example names every key a pod may read
    assert not [key for key in config_data(objects) if SECRET_LIKE.search(key)]


def test_the_secret_example_is_in_no_kustomization():
    for kustomization in K8S.rglob("kustomization.yaml"):
        assert "secret.example" not in yaml.safe_dump(yaml.safe_load(kustomization.read_text())), kustomization


# --- Budgets, autoscalers, network.


def test_pod_disruption_budgets_select_existing_pods(overlay):
    name, objects = overlay
    budgets = find(objects, "PodDisruptionBudget")
    assert {b["metadata"]["name"] for b in budgets} >= {"supportflow-web", "supportflow-worker-ai"}
    for budget in budgets:
        matched = [
            obj["metadata"]["name"]
            for obj, _ in pod_specs(objects)
            if selects(budget["spec"]["selector"], obj["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(matched) == 1, (name, budget["metadata"]["name"], matched)
        assert matched[0] != "supportflow-beat"  # a budget on one replica would block every node drain


def test_autoscalers_target_existing_deployments_on_cpu_and_on_the_ai_queue(overlay):
    name, objects = overlay
    for hpa in find(objects, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        deployment = one(objects, target["kind"], target["name"])
        assert "replicas" not in deployment["spec"]  # the autoscaler owns the count; an apply never resets it
        assert hpa["spec"]["minReplicas"] >= (2 if name == "production" else 1)
    (web_metric,) = one(objects, "HorizontalPodAutoscaler", "supportflow-web")["spec"]["metrics"]
    assert web_metric["resource"]["name"] == "cpu"
    (ai_metric,) = one(objects, "HorizontalPodAutoscaler", "supportflow-worker-ai")["spec"]["metrics"]
    assert ai_metric["type"] == "External"
    assert ai_metric["external"]["metric"]["name"] == "supportflow_celery_queue_length"
    assert ai_metric["external"]["metric"]["selector"]["matchLabels"] == {"queue": "ai"}


def test_network_policy_opens_only_the_web_port_and_the_egress_the_app_needs(overlay):
    name, objects = overlay
    policies = find(objects, "NetworkPolicy")
    for obj, _pod in app_pods(objects):
        labels = obj["spec"]["template"]["metadata"]["labels"]
        ingress = [
            p for p in policies if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
        ]
        assert ingress, (name, obj["metadata"]["name"])  # every pod is under an ingress policy
        rules = [rule for policy in ingress for rule in policy["spec"].get("ingress", [])]
        if labels["app.kubernetes.io/component"] == "web":
            assert [port["port"] for rule in rules for port in rule["ports"]] == [8000]
        else:
            assert rules == [], (name, obj["metadata"]["name"])  # workers, beat, the Job: nothing comes in
        egress = [
            p for p in policies if "Egress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
        ]
        ports = {port["port"] for policy in egress for rule in policy["spec"]["egress"] for port in rule["ports"]}
        assert {53, 5432, 6379, 443} <= ports, (name, obj["metadata"]["name"])


# --- What differs between the overlays.


def test_dev_shares_files_on_one_read_write_many_volume_with_an_in_cluster_database():
    objects = render(K8S / "overlays" / "dev")
    claim = one(objects, "PersistentVolumeClaim", "supportflow-files")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for obj, pod in app_pods(objects):
        data = next(volume for volume in pod["volumes"] if volume["name"] == "data")
        assert data == {"name": "data", "persistentVolumeClaim": {"claimName": "supportflow-files"}}, obj["metadata"][
            "name"
        ]
        for container in pod["containers"]:
            assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]  # SF_DATA_DIR: media, email
    images = {c["image"].split("@")[0] for _, pod in pod_specs(objects) for c in containers(pod)}
    assert {"pgvector/pgvector", "redis"} <= images
    for kind, port in (("postgres", 5432), ("redis", 6379)):
        (policy,) = [
            p
            for p in find(objects, "NetworkPolicy")
            if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == kind
        ]
        (rule,) = policy["spec"]["ingress"]
        assert rule["from"] == [{"podSelector": {"matchLabels": APP}}]
        assert rule["ports"] == [{"port": port, "protocol": "TCP"}]


def test_production_uses_object_storage_tls_and_a_websocket_friendly_ingress():
    objects = render(K8S / "overlays" / "production")
    config = config_data(objects)
    assert config["SF_STORAGE"] == "s3"
    assert config["SECURE_SSL"] == "true"
    assert find(objects, "PersistentVolumeClaim") == []
    assert find(objects, "StatefulSet") == []  # PostgreSQL and Redis are external services
    ingress = one(objects, "Ingress", "supportflow")
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600  # idle chat sockets stay
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    (tls,) = ingress["spec"]["tls"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] in tls["hosts"]
    assert rule["host"] in config["ALLOWED_HOSTS"].split(",")
    assert f"https://{rule['host']}" in config["CSRF_TRUSTED_ORIGINS"].split(",")
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = one(objects, "Service", backend["name"])
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
