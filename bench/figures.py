"""Medians over repeats, and ratios to the raw loop."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from bench.model import Column, Row
from bench.proc import Outcome

THROUGHPUT_COLUMNS = [
    Column("events", "events"),
    Column("events_per_s", "events/s"),
    Column("events_per_s_x", "x raw", ".2f"),
    Column("us_per_event", "µs/event", ".1f"),
    Column("cpu_s", "CPU s", ".2f"),
    Column("cpu_us_per_event", "CPU µs/event", ".1f"),
    Column("cpu_us_per_event_x", "CPU x raw", ".2f"),
    Column("peak_rss_mb", "peak RSS MB", ".0f"),
    Column("peak_rss_mb_x", "RSS x raw", ".2f"),
]


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def throughput(ok: list[Outcome]) -> dict[str, Any]:
    """Median events/s, µs/event, CPU (measured window) and peak RSS of the runs."""
    eps = median([o.result["events_per_s"] for o in ok])
    cpu_us = [o.result["cpu_s"] / max(o.result["window_events"], 1) * 1e6 for o in ok]
    return {
        "events": ok[0].result["window_events"],
        "events_per_s": eps,
        "us_per_event": 1e6 / eps if eps else None,
        "cpu_s": median([o.result["cpu_s"] for o in ok]),
        "cpu_us_per_event": median(cpu_us),
        "cpu_total_s": median([o.cpu_total_s for o in ok]),
        "peak_rss_mb": median([o.peak_rss_mb for o in ok]),
        "order_violations": max(o.result["order_violations"] for o in ok),
    }


def row(
    label: str,
    outcomes: list[Outcome],
    figures: Callable[[list[Outcome]], dict[str, Any]] = throughput,
) -> Row:
    """A table row from the runs of one contender (a note when none succeeded)."""
    ok = [o for o in outcomes if o.ok]
    runs = [
        {
            "ok": o.ok,
            "note": o.note,
            "cpu_total_s": o.cpu_total_s,
            "peak_rss_mb": o.peak_rss_mb,
            **o.result,
        }
        for o in outcomes
    ]
    if not ok:
        notes = sorted({o.note for o in outcomes if o.note})
        return Row(label, note="; ".join(notes) or "not run", runs=runs)
    note = f"{len(ok)}/{len(outcomes)} runs ok" if len(ok) < len(outcomes) else ""
    return Row(label, figures(ok), note=note, runs=runs)


def add_ratios(rows: list[Row], base: Row, keys: tuple[str, ...]) -> None:
    """``<key>_x``: each row's figure divided by the base row's."""
    for r in rows:
        for key in keys:
            value, ref = r.figures.get(key), base.figures.get(key)
            if value is not None and ref:
                r.figures[f"{key}_x"] = value / ref


def find(rows: list[Row], label: str) -> Row | None:
    return next((r for r in rows if r.label == label), None)


def figure(rows: list[Row], label: str, key: str) -> float | None:
    found = find(rows, label)
    return None if found is None else found.figures.get(key)
