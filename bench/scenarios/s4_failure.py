"""4. Failure path: 10 % of events fail once and succeed from retry tier 1 (no delay)."""

from __future__ import annotations

from bench.context import Bench
from bench.figures import THROUGHPUT_COLUMNS, add_ratios, figure, find, row
from bench.model import Column, ScenarioResult, Target
from bench.proc import Outcome

BASE = "streamkit, no failures (scenario 1 workload)"
FAIL = "streamkit, 10 % fail once"
COLUMNS = [Column(c.key, c.header.replace("raw", "no failures"), c.fmt) for c in THROUGHPUT_COLUMNS]


def run(b: Bench) -> ScenarioResult:
    s = b.sizes
    topic = b.data_topic("s1", s.partitions, s.s1_events, s.keys)
    runs: dict[str, list[Outcome]] = {BASE: [], FAIL: []}
    timeout = 60 + s.s1_events / 1000
    for _ in range(b.repeat):
        base = {"topic": topic, "events": s.s1_events, "mode": "sync"}
        runs[BASE].append(b.run("streamkit_worker", base, timeout, tiers=2))
        fail = {**base, "mode": "fail", "fail_every": s.s4_fail_every}
        runs[FAIL].append(b.run("streamkit_worker", fail, timeout, tiers=1))
    rows = [row(label, outcomes) for label, outcomes in runs.items()]
    base_row = find(rows, BASE)
    if base_row is not None:
        add_ratios(rows, base_row, ("events_per_s", "cpu_us_per_event", "peak_rss_mb"))
    result = ScenarioResult("s4", "Failure path", COLUMNS, rows)
    ratio = figure(rows, FAIL, "events_per_s_x")
    result.targets = [Target("failure path / no failures (events/s)", ratio, 0.5, unit="x")]
    result.notes = [
        f"{s.s1_events:,} events; every event with seq % {s.s4_fail_every} == 0 raises on "
        "attempt 1 and succeeds from retry tier 1: RetryPolicy(max_attempts=2, "
        "backoff=FixedBackoff(0)). The run ends when every event was handled successfully; "
        "events/s counts successful events. Retry/DLQ topics created first (ensure_topics).",
        "Includes what production pays per failure: the retry record's publish and ack "
        "(idempotent producer, acks=all), failure headers with a traceback; no log line "
        "(a retry logs at DEBUG).",
    ]
    return result
