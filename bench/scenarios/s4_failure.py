"""4. Failure path: 10 % of events fail once and succeed from retry tier 1 (no delay)."""

from __future__ import annotations

from bench.context import Bench
from bench.figures import THROUGHPUT_COLUMNS, add_ratios, figure, find, row
from bench.model import Column, ScenarioResult, Target
from bench.proc import Outcome

BASE = "streamkit, same handler, no failures"
SYNC = "streamkit, no failures, scenario 1 handler (no Context)"
FAIL = "streamkit, 10 % fail once"
COLUMNS = [Column(c.key, c.header.replace("raw", "no failures"), c.fmt) for c in THROUGHPUT_COLUMNS]


def run(b: Bench) -> ScenarioResult:
    s = b.sizes
    topic = b.data_topic("s1", s.partitions, s.s1_events, s.keys)
    runs: dict[str, list[Outcome]] = {BASE: [], FAIL: [], SYNC: []}
    timeout = 60 + s.s1_events / 1000
    for _ in range(b.repeat):
        sync = {"topic": topic, "events": s.s1_events, "mode": "sync"}
        # The failing handler takes a Context (for its attempt); the baseline runs the very
        # same handler, told never to fail, so the ratio is what failures cost and nothing
        # else. The Context's own cost shows in the scenario 1 handler's row.
        base = {**sync, "mode": "fail", "fail_every": 0}
        runs[BASE].append(b.run("streamkit_worker", base, timeout, tiers=1))
        fail = {**base, "fail_every": s.s4_fail_every}
        runs[FAIL].append(b.run("streamkit_worker", fail, timeout, tiers=1))
        if not b.smoke:  # context only: the smoke run checks the harness, under a minute
            runs[SYNC].append(b.run("streamkit_worker", sync, timeout, tiers=2))
    rows = [row(label, outcomes) for label, outcomes in runs.items() if outcomes]
    base_row = find(rows, BASE)
    if base_row is not None:
        add_ratios(rows, base_row, ("events_per_s", "cpu_us_per_event", "peak_rss_mb"))
    result = ScenarioResult("s4", "Failure path", COLUMNS, rows)
    ratio = figure(rows, FAIL, "events_per_s_x")
    rss = figure(rows, FAIL, "peak_rss_mb_x")
    result.targets = [
        Target("failure path / same handler, no failures (events/s)", ratio, 0.5, unit="x"),
        Target("failure path peak RSS / no failures", rss, 1.2, higher_is_better=False, unit="x"),
    ]
    failing, plain = figure(rows, FAIL, "events_per_s"), figure(rows, SYNC, "events_per_s")
    versus = f"{failing / plain:.2f}x" if failing and plain else "not measured"
    result.notes = [
        f"{s.s1_events:,} events; every event with seq % {s.s4_fail_every} == 0 raises on "
        "attempt 1 and succeeds from retry tier 1: RetryPolicy(max_attempts=2, "
        "backoff=FixedBackoff(0)). The run ends when every event was handled successfully; "
        "events/s counts successful events. Retry/DLQ topics created first (ensure_topics).",
        "'x no failures' divides by the same handler (it takes a Context for its attempt) run "
        "with no event failing: the failures' cost alone. The scenario 1 handler (no Context) "
        "is shown beside it; its ratio to the failing run was this scenario's target before "
        "(2026-12-07), and mixes in the Context's cost (~0.7 us/event): failing run / scenario 1 "
        f"handler = {versus}.",
        "Includes what production pays per failure: the retry record's publish and ack "
        "(idempotent producer, acks=all), failure headers with a traceback; no log line "
        "(a retry logs at DEBUG).",
    ]
    return result
