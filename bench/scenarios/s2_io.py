"""2. I/O-bound async handler: each event awaits ``asyncio.sleep(0.005)``, order per key checked."""

from __future__ import annotations

from bench.context import Bench
from bench.figures import THROUGHPUT_COLUMNS, add_ratios, figure, find, row
from bench.model import Column, ScenarioResult, Target
from bench.proc import Outcome

STREAMKIT = "streamkit"
CEILING = "bare asyncio, 1,000 workers awaiting in turn, no Kafka (ceiling)"
TASK_CEILING = "bare asyncio, a task per event, 1,000 in flight, no Kafka"
RAW_WORKERS = "raw confluent-kafka loop feeding asyncio workers, one per key (reference)"
COLUMNS = [
    *[c for c in THROUGHPUT_COLUMNS if not c.key.endswith("_x")],
    Column("events_per_s_x", "x ceiling", ".2f"),
    Column("cpu_us_per_event_x", "CPU x ceiling", ".2f"),
    Column("order_violations", "order violations"),
]


def _contenders(b: Bench) -> list[tuple[str, str, dict[str, object]]]:
    s = b.sizes
    workers = {"max_workers": s.s2_workers, "events": s.s2_events}
    serial = {"events": min(s.s2_serial_events, s.s2_events)}
    # The ceilings: what asyncio alone does with 1,000 awaits in flight (streamkit's
    # max_inflight, one per key), no Kafka. Run in every repeat, interleaved with the
    # others, so the ratio compares figures from the same minutes of a shared machine.
    bare = {"events": s.s2_events, "inflight": 1000}
    return [
        ("streamkit_worker", STREAMKIT, {"events": s.s2_events}),
        ("asyncio_workers", CEILING, bare),
        ("asyncio_ceiling", TASK_CEILING, bare),
        ("raw_async_workers", RAW_WORKERS, {"events": s.s2_events}),
        ("faststream_aiokafka", f"FastStream (aiokafka), max_workers={s.s2_workers}", workers),
        ("faststream_confluent", f"FastStream (confluent), max_workers={s.s2_workers}", workers),
        ("raw_serial_async", "raw loop, awaiting each event (reference)", serial),
    ]


def run(b: Bench) -> ScenarioResult:
    s = b.sizes
    topic = b.data_topic("s2", s.partitions, s.s2_events, s.keys)
    contenders = _contenders(b)
    outcomes: dict[str, list[Outcome]] = {label: [] for _, label, _ in contenders}
    for _ in range(b.repeat):
        for name, label, extra in contenders:
            spec = {"topic": topic, "mode": "io", "sleep_s": s.s2_sleep, **extra}
            timeout = 60 + int(extra["events"]) * s.s2_sleep  # type: ignore[call-overload]
            tiers = 2 if name == "streamkit_worker" else None
            outcomes[label].append(b.run(name, spec, timeout=timeout, tiers=tiers))
    rows = [row(label, runs) for label, runs in outcomes.items()]
    ceiling = find(rows, CEILING)
    if ceiling is not None:
        add_ratios(rows, ceiling, ("events_per_s", "cpu_us_per_event"))
    result = ScenarioResult("s2", "I/O-bound async handler", COLUMNS, rows)
    result.targets = _targets(rows)
    result.notes = [
        *_against_raw_workers(rows),
        f"{s.s2_events:,} events, {s.keys:,} keys, {s.partitions} partitions, "
        f"handler awaits asyncio.sleep({s.s2_sleep}); streamkit defaults (max_inflight 1000, "
        "ordering by key). Order check: each key's sequence numbers must rise in handler-entry "
        "order; violations counted in the run.",
        "Ceiling: 1,000 long-lived coroutines, each awaiting the same sleep once per event, "
        "in turn (no task per event, no Kafka); `x ceiling` divides by its median. The "
        "task-per-event row is bare asyncio with one task per event, 1,000 in flight.",
        "The raw worker loop is what a hand-written service over confluent-kafka does at "
        "best: consume(500, 0) on the loop, validate, queue per key, one task per key with "
        "events waiting (not per event), each batch committed once it and those before it "
        "were handled. Its gap to the ceiling is the cost of Kafka and validation alone; "
        "streamkit's gap to it is routing, offsets per event, lanes, metrics and a task "
        "for each event that finds no task ending (one that ends takes the next job).",
        "Quix Streams has no async handlers (a sync 5 ms wait runs one at a time, ~200/s): "
        "not run.",
    ]
    return result


def _against_raw_workers(rows: list) -> list[str]:
    """streamkit against the hand-written loop over Kafka (events/s, CPU per event)."""
    sk, raw = find(rows, STREAMKIT), find(rows, RAW_WORKERS)
    if sk is None or raw is None:
        return []
    rate, raw_rate = sk.figures.get("events_per_s"), raw.figures.get("events_per_s")
    cpu, raw_cpu = sk.figures.get("cpu_us_per_event"), raw.figures.get("cpu_us_per_event")
    if not (rate and raw_rate and cpu and raw_cpu):
        return []
    return [
        f"streamkit / raw worker loop over Kafka: {rate / raw_rate:.2f}x events/s, "
        f"{cpu / raw_cpu:.2f}x CPU per event ({cpu:.1f} vs {raw_cpu:.1f} µs)."
    ]


def _targets(rows: list) -> list[Target]:
    ratio = figure(rows, STREAMKIT, "events_per_s_x")
    sk = figure(rows, STREAMKIT, "events_per_s")
    peers = [r.figures.get("events_per_s") for r in rows if "max_workers" in r.label]
    best = max((p for p in peers if p), default=None)
    violations = figure(rows, STREAMKIT, "order_violations")
    return [
        Target("streamkit / worker-style asyncio ceiling (events/s)", ratio, 0.5, unit="x"),
        Target(
            "streamkit / best FastStream max_workers",
            sk / best if sk and best else None,
            5.0,
            unit="x",
        ),
        Target("streamkit per-key order violations", violations, 0, higher_is_better=False),
    ]
