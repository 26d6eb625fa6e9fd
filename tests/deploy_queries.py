"""Every PromQL expression shipped in deploy/: dashboard panel targets and alert rules.

Shared by the unit checks (tests/unit/test_deploy.py) and by integration tests that run
each query against a real Prometheus. Grafana variables are replaced so the text is
plain PromQL: ``$group`` by a regex matching all groups (or one given group) and
``$__rate_interval`` / ``$__interval`` by ``1m``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_PATH = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "streamkit.json"
ALERTS_PATH = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST_PATH = REPO_ROOT / "deploy" / "prometheus" / "alerts_test.yml"

#: Grafana built-in interval variables and the value used outside Grafana.
BUILTIN_VALUES: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
}

# $name, ${name}, ${name:format} and the deprecated [[name]].
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_REGEX_META = set(r".^$*+?()[]{}|\\")

Query = tuple[str, str]  # (source, expr)


def promql_regex_literal(value: str) -> str:
    """Escape ``value`` for use inside a double-quoted PromQL ``=~`` matcher.

    Regex escapes need a doubled backslash because the PromQL string literal unescapes
    once before RE2 sees the pattern.
    """
    return "".join("\\\\" + char if char in _REGEX_META else char for char in value)


def substitute(expr: str, group: str | None = None) -> str:
    """Replace Grafana variables in ``expr``; ``group=None`` matches every group.

    Raises ValueError for a variable this module does not know, so a new dashboard
    variable cannot slip into an integration test as literal text.
    """

    def replace(match: re.Match[str]) -> str:
        name = next(part for part in match.groups() if part)
        if name == "group":
            return ".+" if group is None else promql_regex_literal(group)
        if name in BUILTIN_VALUES:
            return BUILTIN_VALUES[name]
        raise ValueError(f"unknown dashboard variable ${name} in {expr!r}")

    return _VARIABLE.sub(replace, expr)


def load_dashboard(path: Path = DASHBOARD_PATH) -> dict[str, Any]:
    """Return the dashboard JSON as a dict."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def iter_panels(panels: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Yield every panel that is not a row, including panels nested in collapsed rows."""
    for panel in panels:
        if panel.get("type") == "row":
            yield from iter_panels(panel.get("panels", []))
        else:
            yield panel


def dashboard_queries(group: str | None = None, path: Path = DASHBOARD_PATH) -> list[Query]:
    """Return ``(source, expr)`` for each panel target; source is ``dashboard:Title[refId]``."""
    queries: list[Query] = []
    for panel in iter_panels(load_dashboard(path).get("panels", [])):
        for target in panel.get("targets", []):
            source = f"dashboard:{panel['title']}[{target.get('refId', '?')}]"
            queries.append((source, substitute(target["expr"], group)))
    return queries


def load_alert_rules(path: Path = ALERTS_PATH) -> list[dict[str, Any]]:
    """Return every rule (alerting or recording) of every group in the rule file."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def alert_queries(path: Path = ALERTS_PATH) -> list[Query]:
    """Return ``(source, expr)`` for each rule; source is ``alert:Name`` or ``record:name``."""
    queries: list[Query] = []
    for rule in load_alert_rules(path):
        kind, name = ("alert", rule["alert"]) if "alert" in rule else ("record", rule["record"])
        queries.append((f"{kind}:{name}", " ".join(str(rule["expr"]).split())))
    return queries


def all_queries(group: str | None = None) -> list[Query]:
    """Dashboard targets (with ``$group`` resolved) followed by alert rule expressions."""
    return dashboard_queries(group) + alert_queries()


# --- metric names referenced by an expression ------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENT = re.compile(r"\b[A-Za-z_:][\w:]*+(?!\s*\()")
_NUMBER_WORD = re.compile(r"\b\d[\w.]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
     "offset", "bool", "inf", "nan", "atan2", "start", "end"}
)  # fmt: skip


def referenced_metrics(expr: str) -> set[str]:
    """Return the metric names an expression selects (function names and labels removed).

    A small lexer, not a parser: enough for the expressions we ship, and strict enough
    to catch a misspelt metric name.
    """
    text = _STRING.sub('""', expr)
    text = _BRACES.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _NUMBER_WORD.sub(" ", text)
    return {word for word in _IDENT.findall(text) if word.lower() not in _KEYWORDS}
