"""The Markdown table and the JSON file in ``bench/results/``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.model import Column, Row, ScenarioResult, Target


def cell(value: Any, column: Column) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    text = format(value, column.fmt)
    return text + "x" if column.key.endswith("_x") else text


def table(result: ScenarioResult) -> list[str]:
    headers = ["contender", *(c.header for c in result.columns), "note"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in result.rows:
        cells = [r.label, *(cell(r.figures.get(c.key), c) for c in result.columns), r.note]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def target_line(key: str, t: Target) -> str:
    value = "not measured" if t.value is None else f"{t.value:,.2f}{t.unit}"
    sign = "≥" if t.higher_is_better else "≤"
    verdict = {True: "met", False: "**missed**", None: "—"}[t.met]
    return f"| {key} | {t.text} | {sign} {t.goal:,g}{t.unit} | {value} | {verdict} {t.margin} |"


def markdown(meta: dict[str, Any], results: list[ScenarioResult]) -> str:
    out = [
        "# streamkit benchmarks",
        "",
        f"{meta['date']} · `{meta['command']}` · mode: {meta['mode']}, "
        f"median of {meta['repeat']} run(s)",
        "",
        _machine_line(meta),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        "",
        "Peers (.venv-bench): "
        + (", ".join(f"{k} {v}" for k, v in meta["peer_versions"].items()) or "none"),
        "",
        "## Targets",
        "",
        "| scenario | target | goal | measured | verdict |",
        "|---|---|---|---|---|",
    ]
    out += [target_line(r.key, t) for r in results for t in r.targets]
    for note in meta.get("notes", []):
        out += ["", f"> {note}"]
    for r in results:
        number = f"{r.key[1:]}. " if r.key[1:].isdigit() else ""
        out += ["", f"## {number}{r.title}", "", *table(r), ""]
        out += [f"- {n}" for n in r.notes]
    return "\n".join(out) + "\n"


def _machine_line(meta: dict[str, Any]) -> str:
    m = meta["machine"]
    load = ", ".join(f"{x:.2f}" for x in m["load_avg_at_start"])
    return (
        f"Machine: {m['cores']} cores, {m['cpu_model']}, {m['memory_gb']} GB, "
        f"Linux {m['kernel']}; load average at start {load}; broker: local single-node "
        "Kafka (scripts/kafka-local) on the same cores."
    )


def write(directory: Path, stem: str, meta: dict[str, Any], results: list[ScenarioResult]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    md = directory / f"{stem}.md"
    md.write_text(markdown(meta, results))
    data = {"meta": meta, "scenarios": [_as_dict(r) for r in results]}
    (directory / f"{stem}.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    return md


def _as_dict(result: ScenarioResult) -> dict[str, Any]:
    data = asdict(result)
    data["targets"] = [{**asdict(t), "met": t.met} for t in result.targets]
    data["rows"] = [_row(r) for r in result.rows]
    return data


def _row(r: Row) -> dict[str, Any]:
    return asdict(r)
