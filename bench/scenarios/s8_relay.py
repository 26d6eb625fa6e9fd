"""8. Consume -> transform -> publish: at-least-once vs exactly-once, and a raw loop.

Each event's handler publishes one event. Two runs per contender and repeat: throughput
from a backlog, then end-to-end latency at a steady rate (input produce time to the output
being visible to a ``read_committed`` reader, measured in this process).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from bench.contenders.common import summarise_ms
from bench.context import Bench
from bench.figures import add_ratios, figure, find, median, row
from bench.kafka import produce_paced
from bench.model import Column, Row, ScenarioResult, Target
from bench.proc import Outcome

RELAYED = "order.relayed"
RAW = "raw loop (flush, then commit, per batch)"
ALO = "streamkit at-least-once"
EMIT = "streamkit at-least-once, ctx.emit"
EOS = "streamkit exactly-once"
QUIX = "Quix Streams (sdf.to_topic)"
FASTSTREAM = "FastStream (confluent), publisher"
WARM_UP = 100  # events (seq < 0) relayed before the timed stream, not measured
FAST_RETRY = {"retry.backoff.ms": "10"}
# (label, contender, streamkit settings); the tuning rows measure the commit interval and
# librdkafka's retry.backoff.ms on back-to-back transactions (confluent-kafka-python #967).
CONTENDERS: list[tuple[str, str, dict[str, Any] | None]] = [
    (RAW, "raw_relay", None),
    (ALO, "streamkit_worker", {}),
    (EMIT, "streamkit_worker", {"mode": "relay_emit"}),
    (EOS, "streamkit_worker", {"guarantee": "exactly-once"}),
    (QUIX, "quix", None),
    (FASTSTREAM, "faststream_confluent", None),
]
# Awaits each output's delivery report before the next input: ~1,000 events/s, so it relays
# the first s1_peer_events of the backlog (its rate is steady long before that).
SLOW = {FASTSTREAM}
PEERS = {QUIX, FASTSTREAM}
# The smoke run checks the latency harness with these two; the others share it.
SMOKE_LATENCY = {RAW, ALO}
SMOKE_SLOW = 1_000  # events a slow peer relays in the smoke run
TUNING: list[tuple[str, str, dict[str, Any] | None]] = [
    (f"{EOS}, -X retry.backoff.ms=10", "streamkit_worker",
     {"guarantee": "exactly-once", "kafka": FAST_RETRY}),
    (f"{EOS}, commit_interval 0.1 s", "streamkit_worker",
     {"guarantee": "exactly-once", "commit_interval": 0.1}),
    (f"{EOS}, commit_interval 0.1 s, -X retry.backoff.ms=10", "streamkit_worker",
     {"guarantee": "exactly-once", "commit_interval": 0.1, "kafka": FAST_RETRY}),
]  # fmt: skip
COLUMNS = [
    Column("events", "events"),
    Column("events_per_s", "events/s"),
    Column("events_per_s_x", "x at-least-once", ".2f"),
    Column("events_per_s_raw_x", "x raw", ".2f"),
    Column("cpu_us_per_event", "CPU µs/event", ".1f"),
    Column("cpu_us_per_event_x", "CPU x at-least-once", ".2f"),
    Column("p50", "p50 ms", ".1f"),
    Column("p99", "p99 ms", ".1f"),
    Column("peak_rss_mb", "peak RSS MB", ".0f"),
]


def run(b: Bench) -> ScenarioResult:
    s = b.sizes
    contenders = CONTENDERS + (TUNING if s.s8_tuning else [])
    source = b.data_topic("s1", s.partitions, s.s8_events, s.keys)
    runs: dict[str, list[Outcome]] = {label: [] for label, _, _ in contenders}
    latencies: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in contenders}
    for _ in range(b.repeat):
        for label, contender, settings in contenders:
            slow = label in SLOW
            events = min(s.s1_peer_events, s.s8_events) if slow else s.s8_events
            if b.smoke and slow:
                events = min(events, SMOKE_SLOW)  # ~1,300/s: the harness check, not a rate
            timeout = 60 + events / (250 if slow else 1000)  # slack for a busy machine
            runs[label].append(_throughput(b, source, contender, settings, events, timeout))
            if b.smoke and label not in SMOKE_LATENCY:
                continue  # the same latency harness as the others: the smoke run stays < 1 min
            lat = _latency(b, contender, settings)
            if lat is not None:
                latencies[label].append(lat)
    rows = [row(label, outcomes) for label, outcomes in runs.items()]
    for r in rows:
        lat = latencies[r.label]
        if lat and r.figures:
            r.figures.update({k: median([x[k] for x in lat]) for k in ("p50", "p99")})
        elif not lat and r.figures:
            skipped = b.smoke and r.label not in SMOKE_LATENCY
            why = "latency not run (smoke)" if skipped else "latency run failed"
            r.note = (r.note + "; " if r.note else "") + why
    _ratios(rows)
    result = ScenarioResult("s8", "Consume -> publish, exactly-once", COLUMNS, rows)
    result.targets = _targets(rows)
    result.notes = _notes(b)
    return result


def _ratios(rows: list[Row]) -> None:
    """x at-least-once (events/s, CPU per event) and x raw (events/s)."""
    alo = find(rows, ALO)
    if alo is not None:
        add_ratios(rows, alo, ("events_per_s", "cpu_us_per_event"))
    raw = figure(rows, RAW, "events_per_s")
    for r in rows:
        if raw and r.figures.get("events_per_s"):
            r.figures["events_per_s_raw_x"] = r.figures["events_per_s"] / raw


def _targets(rows: list[Row]) -> list[Target]:
    def over(label: str, base: str) -> float | None:
        value, other = figure(rows, label, "events_per_s"), figure(rows, base, "events_per_s")
        return value / other if value and other else None

    return [
        Target("exactly-once / at-least-once (events/s)", over(EOS, ALO), 0.7, unit="x"),
        Target(f"{EMIT} / raw loop (events/s)", over(EMIT, RAW), 0.8, unit="x"),
        Target(f"{EMIT} / Quix Streams (events/s)", over(EMIT, QUIX), 1.0, unit="x"),
    ]


def _notes(b: Bench) -> list[str]:
    s = b.sizes
    return [
        f"Throughput: {s.s8_events:,} waiting envelopes, {s.partitions} partitions; the "
        "handler validates the event and publishes one envelope: ctx.publish, not awaited "
        "(the runtime waits for its ack before the event is done), or ctx.emit (no report "
        "per record: the commit point flushes the emitter, then commits; after a failed "
        "record, what it touched is read again). Window: first to last event handled.",
        f"Latency: {s.s8_rate:,} events/s for {s.s8_seconds:g} s after {WARM_UP} warm-up "
        "events; time.time() when the output is read by a read_committed consumer in the "
        "bench process minus time.time() at the input's produce(). Exactly-once outputs "
        "become visible when their transaction commits: up to the commit interval.",
        "Defaults: commit_interval 1 s, librdkafka retry.backoff.ms 100 ms; exactly-once: "
        "one transaction per commit interval, quiesced at each commit point.",
        "Raw loop: consume(500), validate, produce one envelope per event, flush, then one "
        "async commit per batch, unless a delivery failed (reports of failures only: "
        "delivery.report.only.error).",
        "Peers, their defaults, the same output (JSON envelope, key the order id, header "
        "event_type=order.relayed): Quix Streams apply -> set_headers -> sdf.to_topic, "
        "at-least-once checkpoints (every 5 s and at stop: flush the producer, then "
        "commit). FastStream (confluent): a subscriber under @broker.publisher returning "
        "a KafkaResponse; FastStream awaits each output's delivery report before the next "
        "input; offsets: the client's auto-commit (AckPolicy.ACK_FIRST), not tied to the "
        f"outputs; it relays the first {min(s.s1_peer_events, s.s8_events):,} events of "
        "the backlog.",
    ]


def _spec(b: Bench, source: str, events: int, settings: dict[str, Any] | None) -> dict[str, Any]:
    out = b.admin.create_topic(b.name("s8-out"), b.sizes.partitions)
    spec: dict[str, Any] = {"topic": source, "events": events, "mode": "relay", "output_topic": out}
    if settings is not None:
        settings = dict(settings)
        spec.update(
            mode=settings.pop("mode", "relay"), publish_topics={RELAYED: out}, settings=settings
        )
    return spec


def _throughput(
    b: Bench,
    source: str,
    contender: str,
    settings: dict[str, Any] | None,
    events: int,
    timeout: float,
) -> Outcome:
    spec = _spec(b, source, events, settings)
    tiers = 2 if settings is not None else None
    outcome = b.run(contender, spec, timeout=timeout, tiers=tiers)
    b.admin.delete_topics([spec["output_topic"]])
    return outcome


def _latency(b: Bench, contender: str, settings: dict[str, Any] | None) -> dict[str, float] | None:
    if contender in b.unavailable or b.python_for(contender) is None:
        return None  # a peer that is not installed: its throughput row says so
    s = b.sizes
    source = b.admin.create_topic(b.name("s8-lat"), s.partitions)
    total = int(s.s8_rate * s.s8_seconds)
    spec = _spec(b, source, total + WARM_UP, settings)
    reader = Reader(b.bootstrap, spec["output_topic"], s.partitions)
    child = b.child(contender, spec, tiers=2 if settings is not None else None).start()
    finished = False
    try:
        produce_paced(b.bootstrap, source, WARM_UP * 10, 0.1, s.keys, first_seq=-WARM_UP)
        if reader.wait(lambda: reader.warm >= WARM_UP, 60):
            produce_paced(b.bootstrap, source, s.s8_rate, s.s8_seconds, s.keys)
            finished = reader.wait(lambda: len(reader.latencies) >= total, 30)
    finally:
        if not finished:
            child.terminate()
        child.wait(timeout=30)  # it stops by itself once it handled every event
        reader.stop()
        b.cleanup(child)
        b.admin.delete_topics([source, spec["output_topic"]])
    if len(reader.latencies) < total:
        return None
    return summarise_ms(reader.latencies)


class Reader:
    """A read_committed consumer of the outputs: latency of each, by its input's ``ts``."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "s8-reader",
                                   "isolation.level": "read_committed"})  # fmt: skip
        tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
        self._consumer.assign(tps)
        self.latencies: list[float] = []
        self.warm = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stopping:
            for m in self._consumer.consume(1000, 0.05):
                if m.error() is not None:
                    continue
                now = time.time()
                data = orjson.loads(m.value())["data"]
                if data["seq"] < 0:
                    self.warm += 1
                else:
                    self.latencies.append(now - data["ts"])

    def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``done()``; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self._stopping = True
        self._thread.join(5)
        self._consumer.close()
