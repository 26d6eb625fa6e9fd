"""deploy/k8s without a cluster: every overlay rendered by kustomize (kubectl's own) and
checked against the Kubernetes, KEDA and Prometheus Operator schemas, plus what the
schemas cannot see: KEDA trigger keys, selectors, probes, grace periods, settings names.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError
from prometheus_client import CollectorRegistry

from streamkit.config import Settings
from streamkit.consumer.runtime import FINAL_STEP
from streamkit.handlers.registry import Router
from streamkit.loader import load_router
from streamkit.observability.http import HealthState, serve_http
from tests import k8s_schemas as ks

K8S = ks.REPO_ROOT / "deploy" / "k8s"
RENDERINGS = ["base", "overlays/static-membership", "overlays/sasl-ssl"]
WORKLOADS = ("Deployment", "StatefulSet")


def _tool(name: str) -> str:
    """A binary the dev extras install next to the interpreter (kubectl, hadolint)."""
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert path, f"{name} missing: `make install` installs it (pyproject [dev])"
    return path


def _schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """The CRD schemas; without Go, skip locally but fail in CI, where it must exist."""
    try:
        return ks.crd_schemas()
    except ks.ToolMissing as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI=true: the machine must have it)")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    kubectl = _tool("kubectl")
    out = {}
    for name in RENDERINGS:
        result = subprocess.run(
            [kubectl, "kustomize", str(K8S / name)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"kustomize {name}: {result.stderr}"
        out[name] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return out


def _all(rendered: dict[str, list[dict[str, Any]]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, docs in rendered.items():
        for doc in docs:
            yield name, doc


def _of(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def _workload(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] in WORKLOADS]
    return found


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def _validate(doc: dict[str, Any]) -> None:
    """Raise when ``doc`` does not match its kind's schema (strict: no unknown fields)."""
    try:
        kubernetes_validate.validate(doc, ks.K8S_VERSION, strict=True)
        return
    except SchemaNotFoundError:
        pass
    schema = _schemas().get((doc["apiVersion"], doc["kind"]))
    assert schema is not None, f"no schema for {doc['apiVersion']} {doc['kind']}"
    jsonschema.validate(doc, schema)


# --- schemas ------------------------------------------------------------------------------


def test_every_object_matches_its_schema(rendered: dict[str, list[dict[str, Any]]]) -> None:
    kinds = set()
    for name, doc in _all(rendered):
        try:
            _validate(doc)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            pytest.fail(f"{name}: {doc['kind']} {doc['metadata']['name']}: {exc}")
        kinds.add(doc["kind"])
    expected = {"ConfigMap", "Secret", "Service", "Deployment", "StatefulSet",
                "PodDisruptionBudget", "ScaledObject", "TriggerAuthentication",
                "ServiceMonitor", "PrometheusRule"}  # fmt: skip
    assert kinds == expected


@pytest.mark.parametrize(
    ("kind", "path", "typo"),
    [
        ("Deployment", ["spec", "template", "spec", "terminationGracePeriodSeconds"], "x"),
        ("ScaledObject", ["spec", "maxReplicaCount"], "maxReplicaCont"),
        ("ServiceMonitor", ["spec", "endpoints", 0, "port"], "prot"),
        ("PrometheusRule", ["spec", "groups", 0, "rules", 0, "expr"], "exp"),
    ],
)
def test_schema_check_catches_a_misspelt_field(
    rendered: dict[str, list[dict[str, Any]]], kind: str, path: list[Any], typo: str
) -> None:
    """The validation is strict: a field name nobody reads fails it, CRDs included."""
    (doc,) = _of(copy.deepcopy(rendered["base"]), kind)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    value = parent.pop(path[-1])
    parent[typo if typo != "x" else path[-1] + "s"] = value
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
        _validate(doc)


# --- KEDA: what the CRD types as a free string map ----------------------------------------


def _trigger_problems(trigger: dict[str, Any], router: Router, group: str) -> list[str]:
    metadata_keys, _ = ks.kafka_scaler_keys()
    meta = trigger["metadata"]
    problems = [f"unknown kafka scaler key {k!r}" for k in sorted(set(meta) - metadata_keys)]
    tiers = router.derived_topics(router.topics, group)
    if trigger["type"] != "kafka":
        problems.append(f"type {trigger['type']!r}")
    if meta.get("topic") not in router.topics or meta.get("topic") in tiers:
        problems.append(f"topic {meta.get('topic')!r} is not a source topic")
    if not str(meta.get("lagThreshold", "")).isdigit() or int(meta["lagThreshold"]) < 1:
        problems.append(f"lagThreshold {meta.get('lagThreshold')!r}")
    if meta.get("consumerGroup") != group:
        problems.append(f"consumerGroup {meta.get('consumerGroup')!r} is not {group!r}")
    return problems


def test_scaledobject_triggers_use_kafka_scaler_keys(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    router = load_router("examples.orders.handlers")
    for name, docs in rendered.items():
        (scaled,) = _of(docs, "ScaledObject")
        triggers = scaled["spec"]["triggers"]
        assert [t["metadata"]["topic"] for t in triggers] == router.topics, name
        for trigger in triggers:
            assert _trigger_problems(trigger, router, "orders") == [], name
        workload = _workload(docs)
        assert scaled["spec"]["scaleTargetRef"]["kind"] == workload["kind"], name
        assert scaled["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"], name
        # bootstrapServersFromEnv is read from the workload's env: it must be there.
        assert "STREAMKIT_BOOTSTRAP_SERVERS" in _env(docs), name


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"lagTreshold": "30000"}, "unknown kafka scaler key 'lagTreshold'"),
        ({"topic": "orders.orders.retry.1"}, "is not a source topic"),
        ({"consumerGroup": "billing"}, "is not 'orders'"),
        ({"lagThreshold": "0"}, "lagThreshold '0'"),
    ],
)
def test_trigger_check_catches_mistakes(
    rendered: dict[str, list[dict[str, Any]]], change: dict[str, str], expected: str
) -> None:
    (scaled,) = _of(copy.deepcopy(rendered["base"]), "ScaledObject")
    trigger = scaled["spec"]["triggers"][0]
    trigger["metadata"].update(change)
    problems = _trigger_problems(trigger, load_router("examples.orders.handlers"), "orders")
    assert any(expected in p for p in problems), problems


def test_trigger_authentication_uses_kafka_auth_params(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    _, auth_params = ks.kafka_scaler_keys()
    docs = rendered["overlays/sasl-ssl"]
    (auth,) = _of(docs, "TriggerAuthentication")
    (secret,) = _of(docs, "Secret")
    refs = auth["spec"]["secretTargetRef"]
    assert {r["parameter"] for r in refs} <= auth_params
    assert all(r["name"] == secret["metadata"]["name"] for r in refs)
    assert all(r["key"] in secret["stringData"] for r in refs)
    (scaled,) = _of(docs, "ScaledObject")
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]


# --- generated files -----------------------------------------------------------------------


def _build_module() -> Any:
    spec = importlib.util.spec_from_file_location("streamkit_build_k8s", K8S / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_current() -> None:
    for path, text in _build_module().render().items():
        assert path.read_text(encoding="utf-8") == text, "run: python deploy/k8s/build.py"


def test_prometheus_rule_is_the_alert_rules(rendered: dict[str, list[dict[str, Any]]]) -> None:
    alerts = yaml.safe_load((ks.REPO_ROOT / "deploy/prometheus/alerts.yml").read_text())
    (rule,) = _of(rendered["base"], "PrometheusRule")
    assert rule["spec"]["groups"] == alerts["groups"]


# --- the pods -----------------------------------------------------------------------------


def _env(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The container's environment: its ConfigMap's keys and its own env entries."""
    container = _container(_workload(docs))
    maps = {doc["metadata"]["name"]: doc["data"] for doc in _of(docs, "ConfigMap")}
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    env.update({e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])})
    return env


def test_env_names_are_streamkit_settings(rendered: dict[str, list[dict[str, Any]]]) -> None:
    fields = set(Settings.model_fields)
    for name, docs in rendered.items():
        for var in _env(docs):
            assert var.startswith("STREAMKIT_"), (name, var)
            assert var.removeprefix("STREAMKIT_").lower() in fields, (name, var)
        Settings.model_validate(
            {k.removeprefix("STREAMKIT_").lower(): v for k, v in _env(docs).items()
             if isinstance(v, str) and not k.endswith("_FILE")}
        )  # fmt: skip


def test_grace_period_outlasts_the_shutdown(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Drain (--shutdown-timeout), then commit, leave, flush: FINAL_STEP s at least each."""
    for name, docs in rendered.items():
        grace = _workload(docs)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        shutdown = float(_env(docs)["STREAMKIT_SHUTDOWN_TIMEOUT"])
        assert grace >= shutdown + 3 * FINAL_STEP + 2, name


def test_probes_hit_the_health_endpoints(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Liveness /healthz, readiness /readyz, on the port the process serves them on."""
    for name, docs in rendered.items():
        container = _container(_workload(docs))
        (port,) = container["ports"]
        assert port["containerPort"] == int(_env(docs)["STREAMKIT_METRICS_PORT"]), name
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    health = HealthState()
    with serve_http(0, CollectorRegistry(), health, host="127.0.0.1") as server:
        codes: dict[str, int] = {}
        for path in ("/healthz", "/readyz", "/nosuch"):
            try:
                codes[path] = urllib.request.urlopen(
                    f"http://127.0.0.1:{server.port}{path}", timeout=5
                ).status
            except urllib.error.HTTPError as exc:
                codes[path] = exc.code
    assert codes == {"/healthz": 200, "/readyz": 503, "/nosuch": 404}


def test_resources_from_the_measured_rss(rendered: dict[str, list[dict[str, Any]]]) -> None:
    measured_peak_mib = 200  # examples.orders, 200,000-event backlog (README "Deploying")
    for name, docs in rendered.items():
        resources = _container(_workload(docs))["resources"]
        request = int(resources["requests"]["memory"].removesuffix("Mi"))
        limit = int(resources["limits"]["memory"].removesuffix("Mi"))
        assert measured_peak_mib < request <= limit, name
        assert limit >= 2 * measured_peak_mib, name
        assert "cpu" in resources["requests"], name


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_selectors_pick_the_pods_and_one_metrics_service(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for name, docs in rendered.items():
        workload = _workload(docs)
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert _selects(workload["spec"]["selector"]["matchLabels"], pod_labels), name
        (pdb,) = _of(docs, "PodDisruptionBudget")
        assert _selects(pdb["spec"]["selector"]["matchLabels"], pod_labels), name
        for service in _of(docs, "Service"):
            assert _selects(service["spec"]["selector"], pod_labels), name
        (monitor,) = _of(docs, "ServiceMonitor")
        wanted = monitor["spec"]["selector"]["matchLabels"]
        scraped = [s for s in _of(docs, "Service") if _selects(wanted, s["metadata"]["labels"])]
        assert len(scraped) == 1, f"{name}: each pod must be scraped once, through one Service"
        ports = {p["name"] for p in scraped[0]["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports, name


def test_statefulset_is_the_deployment_plus_an_instance_id(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    deployment = _workload(rendered["base"])
    statefulset = _workload(rendered["overlays/static-membership"])
    assert statefulset["kind"] == "StatefulSet"
    pod = copy.deepcopy(statefulset["spec"]["template"])
    env = pod["spec"]["containers"][0].pop("env")
    assert env == [{"name": "STREAMKIT_INSTANCE_ID",
                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]  # fmt: skip
    assert pod == deployment["spec"]["template"]
    assert statefulset["spec"]["serviceName"] in {
        s["metadata"]["name"] for s in _of(rendered["overlays/static-membership"], "Service")
    }


def test_pods_run_as_non_root_with_a_tagged_image(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    dockerfile = (ks.REPO_ROOT / "Dockerfile").read_text()
    for name, docs in rendered.items():
        pod = _workload(docs)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert f"USER {pod['securityContext']['runAsUser']}:" in dockerfile, name
        image = pod["containers"][0]["image"]
        assert ":" in image and not image.endswith(":latest"), (name, image)
        assert "replicas" not in _workload(docs)["spec"], f"{name}: KEDA owns the count"
