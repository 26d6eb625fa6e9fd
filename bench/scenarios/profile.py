"""The streamkit hot path of scenario 1, profiled: py-spy (sampled) and cProfile (calls)."""

from __future__ import annotations

import io
import pstats
from pathlib import Path

from bench.context import Bench
from bench.model import Column, Row, ScenarioResult
from bench.profiling import folded_report, py_spy

COLUMNS = [Column("events", "events"), Column("events_per_s", "events/s")]


def run(b: Bench) -> ScenarioResult:
    s = b.sizes
    topic = b.data_topic("s1", s.partitions, s.s1_events, s.keys)
    events = min(s.profile_events, s.s1_events)
    spec = {"topic": topic, "events": events, "mode": "sync"}
    sections = [f"streamkit hot path, scenario 1 workload ({events:,} events, sync handler)\n"]
    rows = []
    spy = py_spy(b.peers.python)
    if spy:
        sections.append(_sampled(b, spec, spy, events, rows))
    else:
        sections.append("py-spy not available: sampled profile skipped\n")
    sections.append(_deterministic(b, spec, events, rows))
    path = b.results_dir / f"{b.stem_prefix}profile.txt"
    path.write_text("\n".join(sections))
    result = ScenarioResult("profile", "Profile of the streamkit hot path", COLUMNS, rows)
    result.notes = [f"Top costs per event: {path.relative_to(b.results_dir.parent.parent)}"]
    return result


def _sampled(b: Bench, spec: dict[str, object], spy: str, events: int, rows: list[Row]) -> str:
    folded = b.workdir / "pyspy.folded"
    rate = b.sizes.profile_rate
    wrap = [
        spy,
        "record",
        "--format",
        "raw",
        "--rate",
        str(rate),
        "--gil",
        "--nonblocking",
        "--output",
        str(folded),
        "--",
    ]
    child = b.child("streamkit_worker", dict(spec), tiers=2).start(wrap=wrap)
    outcome = child.wait(timeout=180)
    b.cleanup(child)
    if not outcome.ok or not folded.exists():
        return f"py-spy run failed: {outcome.note}\n"
    eps = outcome.result["events_per_s"]
    rows.append(Row("streamkit under py-spy", {"events": events, "events_per_s": eps}))
    return folded_report(folded.read_text(), rate, events, eps)


def _deterministic(b: Bench, spec: dict[str, object], events: int, rows: list[Row]) -> str:
    stats_path = b.workdir / "cprofile.pstats"
    child = b.child("streamkit_worker", {**spec, "profile": str(stats_path)}, tiers=2).start()
    outcome = child.wait(timeout=300)
    b.cleanup(child)
    if not outcome.ok:
        return f"cProfile run failed: {outcome.note}\n"
    rows.append(
        Row(
            "streamkit under cProfile",
            {"events": events, "events_per_s": outcome.result["events_per_s"]},
        )
    )
    return _pstats_report(stats_path, events)


def _pstats_report(path: Path, events: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats("tottime")
    total_calls = sum(v[1] for v in stats.stats.values())  # type: ignore[attr-defined]
    out.write(
        "cProfile (deterministic; inflates cheap calls, use for call counts): "
        f"{total_calls / events:.1f} Python calls per event\n"
        "Top 30 by own time (tottime); ncalls / events = calls per event\n"
    )
    stats.print_stats(30)
    return out.getvalue()
