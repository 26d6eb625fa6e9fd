"""3. End-to-end latency at a steady produce rate: produce time to handler entry."""

from __future__ import annotations

import time

from bench.context import Bench
from bench.figures import median
from bench.kafka import produce_paced
from bench.model import Column, Row, ScenarioResult, Target
from bench.proc import Child, Outcome, read_int, wait_for_file

WARM_UP = 100  # events produced (seq < 0, not measured) before the timed stream

COLUMNS = [
    Column("events", "events"),
    Column("rate", "produced/s"),
    Column("p50", "p50 ms", ".1f"),
    Column("p99", "p99 ms", ".1f"),
    Column("p999", "p99.9 ms", ".1f"),
    Column("max", "max ms", ".1f"),
    Column("cpu_s", "CPU s", ".2f"),
    Column("peak_rss_mb", "peak RSS MB", ".0f"),
]


STREAMKIT = "streamkit (defaults, async handler)"
RAW = "raw poll(0.1) loop, validate, store offset (reference)"
CONTENDERS = [("streamkit_worker", STREAMKIT, 2), ("raw_poll", RAW, None)]


def run(b: Bench) -> ScenarioResult:
    outcomes: dict[str, list[Outcome]] = {label: [] for _, label, _ in CONTENDERS}
    for _ in range(b.repeat):
        for contender, label, tiers in CONTENDERS:  # interleaved: same machine state
            outcomes[label].append(_once(b, contender, tiers))
    rows = [_row(b, label, runs) for label, runs in outcomes.items()]
    result = ScenarioResult("s3", "End-to-end latency", COLUMNS, rows)
    sk, raw = rows[0].figures, rows[1].figures
    extra = sk["p99"] - raw["p99"] if "p99" in sk and "p99" in raw else None
    worst = sk["max"] / raw["max"] if sk.get("max") and raw.get("max") else None
    result.targets = [
        Target("streamkit p99 latency", sk.get("p99"), 25, higher_is_better=False, unit=" ms"),
        Target("streamkit p99 - raw loop p99", extra, 3, higher_is_better=False, unit=" ms"),
        Target("streamkit max / raw loop max", worst, 1.5, higher_is_better=False, unit="x"),
    ]
    s = b.sizes
    result.notes = [
        f"{s.s3_rate:,} events/s for {s.s3_seconds:g} s, {s.partitions} partitions; latency = "
        "time.time() at handler entry minus time.time() at produce() (in the event data); "
        f"{WARM_UP} warm-up events first (not counted).",
        "Settings that matter: the producer's linger.ms (librdkafka default 5 ms, counted "
        "here), streamkit's poll: a batch of what is ready, else poll(poll_timeout=0.1 s) "
        "which returns on the first record; fetch.wait.max.ms does not add when records "
        "arrive (fetch.min.bytes=1).",
        "The reference loop handles one record per poll(0.1) with nothing else to do: "
        "what is left above it is the framework's (commit, lag refresh, metrics, the "
        "thread hop per poll, GC).",
    ]
    return result


def _warm_up(b: Bench, topic: str, progress: str, child: Child) -> bool:
    """A few events first, so the figures show the steady state, not the first fetch."""
    produce_paced(b.bootstrap, topic, WARM_UP * 10, 0.1, b.sizes.keys, first_seq=-WARM_UP)
    deadline = time.monotonic() + 30
    while read_int(progress) < WARM_UP and time.monotonic() < deadline:
        if child.exited():
            return False
        time.sleep(0.02)
    return read_int(progress) >= WARM_UP


def _row(b: Bench, label: str, outcomes: list[Outcome]) -> Row:
    ok = [o for o in outcomes if o.ok and o.result.get("latency_ms")]
    row = Row(label, runs=[o.result for o in outcomes])
    if not ok:
        row.note = "; ".join(o.note for o in outcomes)
        return row
    lat = [o.result["latency_ms"] for o in ok]
    row.figures = {k: median([x[k] for x in lat]) for k in ("p50", "p99", "p999", "max")}
    row.figures.update(
        events=ok[0].result["handled"],
        rate=b.sizes.s3_rate,
        cpu_s=median([o.result["cpu_s"] for o in ok]),
        peak_rss_mb=median([o.peak_rss_mb for o in ok]),
    )
    return row


def _once(b: Bench, contender: str, tiers: int | None) -> Outcome:
    s = b.sizes
    topic = b.admin.create_topic(b.name("s3"), s.partitions)
    total = int(s.s3_rate * s.s3_seconds)
    ready = str(b.workdir / f"{topic}.ready")
    spec = {"topic": topic, "events": total, "mode": "latency", "ready": ready}
    spec["events"] = total + WARM_UP
    spec["progress"] = progress = str(b.workdir / f"{topic}.progress")
    child = b.child(contender, spec, tiers=tiers).start()
    if wait_for_file(ready, 60, [child]) and _warm_up(b, topic, progress, child):
        produce_paced(b.bootstrap, topic, s.s3_rate, s.s3_seconds, s.keys)
    else:
        child.terminate()
    outcome = child.wait(timeout=60)
    b.cleanup(child)
    b.admin.delete_topics([topic])
    return outcome
