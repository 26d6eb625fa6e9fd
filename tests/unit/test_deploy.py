"""Checks of deploy/: Grafana dashboard JSON and Prometheus alert rules.

Dashboard and alerts may only use metric names that streamkit.observability exports;
PromQL syntax and the alert unit tests are checked with promtool (scripts/install-prometheus).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from streamkit.observability.metrics import METRIC_NAMES, Metrics


def _load(name: str, path: Path) -> ModuleType:
    """Import a module by path: tests/ and deploy/ are not packages."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


dq = _load("deploy_queries", Path(__file__).resolve().parents[1] / "deploy_queries.py")
REPO_ROOT: Path = dq.REPO_ROOT
BUILD_SCRIPT = REPO_ROOT / "deploy" / "grafana" / "build_dashboard.py"

EXPECTED_ALERTS = {
    "StreamkitConsumerLagHigh",
    "StreamkitLagSecondsAboveSLA",
    "StreamkitDeadLettersIncreasing",
    "StreamkitHandlerErrorRateHigh",
    "StreamkitNoReadyService",
    "StreamkitCommitFailures",
    "StreamkitPublishFailures",
}
EXPECTED_ROWS = [
    "Lag",
    "Throughput",
    "Handler latency",
    "Retries and dead letters",
    "Rebalances and commits",
    "Producer",
    "Idempotency",
    "Instances",
]
IN_CI = os.environ.get("CI") == "true"


def _require_tool(reason: str) -> None:
    """Skip locally when an optional tool is missing, but fail in CI, where it must exist."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the CI setup must install it)")
    pytest.skip(reason)


def _series_names() -> set[str]:
    """Series names a scrape of Metrics() can contain, plus Prometheus' own ``up``."""
    names = {"up"}
    for family in Metrics().registry.collect():
        if family.type == "histogram":
            names |= {f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum")}
        else:
            names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


ALLOWED = _series_names()


# --- dashboard ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = dq.load_dashboard()
    return data


def _variable(dashboard: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    variables: list[Mapping[str, Any]] = dashboard["templating"]["list"]
    found = [v for v in variables if v["name"] == name]
    assert len(found) == 1, f"template variable {name!r} missing"
    return found[0]


def test_dashboard_top_level(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "streamkit-consumers"
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["title"]
    datasource = _variable(dashboard, "datasource")
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    group = _variable(dashboard, "group")
    assert group["type"] == "query"
    assert group["query"] == "label_values(streamkit_assigned_partitions, group)"
    assert group["includeAll"] is True


def test_dashboard_rows(dashboard: dict[str, Any]) -> None:
    rows = [panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"]
    assert rows == EXPECTED_ROWS


def test_dashboard_panel_ids_unique(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def _check_grid(title: str, grid: Mapping[str, Any]) -> None:
    assert {"h", "w", "x", "y"} <= grid.keys(), title
    assert all(isinstance(grid[k], int) and grid[k] >= 0 for k in "hwxy"), title
    assert grid["x"] + grid["w"] <= 24, f"{title} overflows the 24-column grid"


def _check_targets(title: str, targets: list[Mapping[str, Any]]) -> None:
    assert targets, f"{title} has no targets"
    for target in targets:
        assert target["expr"].strip(), title
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
    ref_ids = [target["refId"] for target in targets]
    assert len(ref_ids) == len(set(ref_ids)), f"{title} repeats a refId"


def test_dashboard_panel_shape(dashboard: dict[str, Any]) -> None:
    panels = list(dq.iter_panels(dashboard["panels"]))
    assert len(panels) >= 14
    for panel in panels:
        title = panel["title"]
        assert panel["type"] in {"timeseries", "stat"}, title
        assert title
        _check_grid(title, panel["gridPos"])
        _check_targets(title, panel["targets"])


def test_dashboard_shows_every_metric() -> None:
    used = set().union(*(dq.referenced_metrics(expr) for _, expr in dq.dashboard_queries()))
    shown = {name for name in METRIC_NAMES if any(u.startswith(name) for u in used)}
    assert shown == METRIC_NAMES


def test_dashboard_matches_generator() -> None:
    if importlib.util.find_spec("grafana_foundation_sdk") is None:
        _require_tool("grafana-foundation-sdk is not installed: cannot regenerate the dashboard")
    build = _load("streamkit_build_dashboard", BUILD_SCRIPT)
    committed = dq.DASHBOARD_PATH.read_text(encoding="utf-8")
    assert build.render() == committed, "run: python deploy/grafana/build_dashboard.py"


# --- metric names in every query ------------------------------------------------------------


@pytest.mark.parametrize(("source", "expr"), dq.all_queries())
def test_query_uses_exported_metrics(source: str, expr: str) -> None:
    used = dq.referenced_metrics(expr)
    assert used, f"{source}: no metric found in {expr!r}"
    assert used <= ALLOWED, f"{source}: unknown metrics {sorted(used - ALLOWED)}"


def test_referenced_metrics_catches_typo() -> None:
    expr = 'sum by (le) (rate(streamkit_handler_duraton_seconds_bucket{group=~".+"}[1m]))'
    assert dq.referenced_metrics(expr) == {"streamkit_handler_duraton_seconds_bucket"}


def test_substitute_group_and_intervals() -> None:
    expr = 'rate(streamkit_events_total{group=~"$group"}[$__rate_interval])'
    assert dq.substitute(expr) == 'rate(streamkit_events_total{group=~".+"}[1m])'
    assert dq.substitute(expr, "orders.v1") == (
        'rate(streamkit_events_total{group=~"orders\\\\.v1"}[1m])'
    )
    assert dq.substitute('x{group=~"${group:regex}"}', "a") == 'x{group=~"a"}'
    with pytest.raises(ValueError, match=r"\$instance"):
        dq.substitute('x{instance="$instance"}')


# --- alert rules ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = dq.load_alert_rules()
    return loaded


def test_alert_group_and_names(rules: list[dict[str, Any]]) -> None:
    document = yaml.safe_load(dq.ALERTS_PATH.read_text(encoding="utf-8"))
    assert [group["name"] for group in document["groups"]] == ["streamkit"]
    assert {rule["alert"] for rule in rules} == EXPECTED_ALERTS


def test_alert_labels_and_annotations(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        runbook = annotations["runbook"]
        # One sentence on one line: what to check or do.
        assert "\n" not in runbook.strip(), name
        assert runbook.endswith("."), name


def _alert_test_cases() -> list[tuple[str, bool]]:
    """(alertname, expects firing) for every alert_rule_test entry of alerts_test.yml."""
    document = yaml.safe_load(dq.ALERTS_TEST_PATH.read_text(encoding="utf-8"))
    return [
        (case["alertname"], bool(case.get("exp_alerts")))
        for test in document["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def test_every_alert_has_firing_and_quiet_case() -> None:
    cases = set(_alert_test_cases())
    for name in EXPECTED_ALERTS:
        assert (name, True) in cases, f"{name} has no firing test"
        assert (name, False) in cases, f"{name} has no not-firing test"


# --- promtool -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        _require_tool("promtool not on PATH: run scripts/install-prometheus")
    assert path is not None
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_check_rules(promtool: str) -> None:
    result = _run(promtool, "check", "rules", str(dq.ALERTS_PATH))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules(promtool: str) -> None:
    result = _run(promtool, "test", "rules", str(dq.ALERTS_TEST_PATH))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    # promtool has no bare PromQL check: wrap each query in a recording rule.
    rules = [
        {"record": f"streamkit:dashboard_query:{index}", "expr": expr}
        for index, (_, expr) in enumerate(dq.dashboard_queries())
    ]
    rule_file = tmp_path / "dashboard_rules.yml"
    rule_file.write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8"
    )
    result = _run(promtool, "check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr
