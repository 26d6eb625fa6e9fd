"""Schemas to check deploy/ against, without a cluster and without Docker.

- Kubernetes' own kinds: the ``kubernetes-validate`` package (its JSON schemas, strict).
- KEDA, Prometheus Operator: their CRDs, as the projects release them in their Go modules
  (``go mod download``, cached in the Go module cache), turned into strict JSON schemas.
- KEDA's kafka scaler keys: the ``keda:"name=..."`` tags of its metadata struct in the same
  module (the CRD types trigger metadata as a free string map, so a typo passes it).
- Compose: compose-spec.json from compose-go, the loader ``docker compose`` itself uses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
K8S_VERSION = "1.37.0"
KEDA = ("github.com/kedacore/keda/v2", "v2.21.0")
PROMETHEUS_OPERATOR = ("github.com/prometheus-operator/prometheus-operator", "v0.85.0")
COMPOSE_GO = ("github.com/compose-spec/compose-go/v2", "v2.16.2")
_PO_CRDS = "example/prometheus-operator-crd/monitoring.coreos.com"
CRD_FILES = {
    KEDA: ["config/crd/bases/keda.sh_scaledobjects.yaml",
           "config/crd/bases/keda.sh_triggerauthentications.yaml"],
    PROMETHEUS_OPERATOR: [f"{_PO_CRDS}_servicemonitors.yaml", f"{_PO_CRDS}_prometheusrules.yaml"],
}  # fmt: skip


class ToolMissing(Exception):
    """A tool the checks need is not installed (go)."""


@cache
def go_module(module: str, version: str) -> Path:
    """The unpacked module, downloaded once into the Go module cache."""
    go = shutil.which("go")
    if go is None:
        raise ToolMissing("go is not on PATH: cannot fetch the CRDs from the Go module proxy")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    result = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True, text=True, timeout=180, check=False, env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    info = json.loads(result.stdout or "{}")
    if result.returncode != 0 or "Dir" not in info:
        raise RuntimeError(f"go mod download {module}@{version}: {info or result.stderr}")
    return Path(info["Dir"])


def strict(schema: Any) -> Any:
    """Close every object schema that lists its properties (as kubeconform -strict does).

    CRD schemas leave ``additionalProperties`` out, so a misspelt field would pass;
    objects that keep unknown fields on purpose are left open.
    """
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if isinstance(out.get("pattern"), str):
        out["pattern"] = _python_regex(out["pattern"])
    keeps_unknown = out.get("x-kubernetes-preserve-unknown-fields", False)
    open_on_purpose = keeps_unknown or "additionalProperties" in out
    if "properties" in out and not open_on_purpose:
        out["additionalProperties"] = False
    return out


def _python_regex(pattern: str) -> str:
    """Go's RE2 allows ``^(?i)...``; Python wants global flags first."""
    flags = re.findall(r"\(\?[a-z]+\)", pattern)
    if flags and not pattern.startswith(flags[0]):
        pattern = "".join(flags) + re.sub(r"\(\?[a-z]+\)", "", pattern)
    return pattern


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """``(apiVersion, kind) -> strict JSON schema`` of every CRD version we deploy."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for (module, version), files in CRD_FILES.items():
        root = go_module(module, version)
        for name in files:
            crd = yaml.safe_load((root / name).read_text(encoding="utf-8"))
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for served in crd["spec"]["versions"]:
                schema = served["schema"]["openAPIV3Schema"]
                schemas[(f"{group}/{served['name']}", kind)] = strict(schema)
    return schemas


_TAG = re.compile(r'keda:"name=([^,"]+),order=([^,"]+)')


@cache
def kafka_scaler_keys() -> tuple[frozenset[str], frozenset[str]]:
    """(trigger metadata keys, TriggerAuthentication parameters) of KEDA's kafka scaler.

    A ``resolvedEnv`` key may also be given as ``<key>FromEnv`` (read from the scale
    target's environment).
    """
    source = (go_module(*KEDA) / "pkg" / "scalers" / "kafka_scaler.go").read_text()
    metadata: set[str] = set()
    auth: set[str] = set()
    for name, order in _TAG.findall(source):
        sources = set(order.split(";"))
        if "triggerMetadata" in sources:
            metadata.add(name)
        if "resolvedEnv" in sources:
            metadata.add(f"{name}FromEnv")
        if "authParams" in sources:
            auth.add(name)
    if not {"lagThreshold", "topic", "consumerGroup"} <= metadata:
        raise RuntimeError("kafka_scaler.go changed shape: its keda tags were not found")
    return frozenset(metadata), frozenset(auth)


@cache
def compose_schema() -> dict[str, Any]:
    """The Compose Specification JSON schema that compose-go validates with."""
    path = go_module(*COMPOSE_GO) / "schema" / "compose-spec.json"
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema
