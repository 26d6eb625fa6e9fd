"""9. How cost grows: partitions, event types, payload size and keys, streamkit alone.

Each dimension moves alone from the scenario-1 workload (3 partitions, 1 event type,
~170-byte envelopes, 1,000 keys, trivial sync handler); keys move with the scenario-2
handler (awaits 5 ms: lanes are per key). Same total events per row of a dimension.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

from bench.context import Bench
from bench.figures import THROUGHPUT_COLUMNS, row
from bench.kafka import FAST_PRODUCER, _flush, _send
from bench.model import ScenarioResult
from bench.proc import Outcome
from bench.workload import EVENT_TYPE, key_of
from streamkit.envelope import HEADER_EVENT_TYPE, encode_envelope

COLUMNS = [c for c in THROUGHPUT_COLUMNS if not c.key.endswith("_x")]


def event_type_of(seq: int, types: int) -> str:
    """``order.created`` for one type; ``order.created.N`` (N = seq mod types) for more."""
    return EVENT_TYPE if types == 1 else f"{EVENT_TYPE}.{seq % types}"


def produce_shaped(
    bootstrap: str, topic: str, events: int, *, keys: int, types: int, pad: int
) -> float:
    """Envelopes of ``types`` event types, each ``pad`` bytes larger than scenario 1's."""
    producer = Producer({"bootstrap.servers": bootstrap, **FAST_PRODUCER})
    started, now, filler = time.perf_counter(), time.time(), "x" * pad
    headers: dict[str, list[tuple[str, bytes]]] = {}
    for seq in range(events):
        key, event_type = key_of(seq, keys), event_type_of(seq, types)
        data: dict[str, Any] = {"order_id": key, "seq": seq, "amount_cents": 1000, "ts": now}
        if pad:
            data["note"] = filler
        value = encode_envelope(event_type, data, occurred_at=datetime.now(UTC))
        if event_type not in headers:
            headers[event_type] = [(HEADER_EVENT_TYPE, event_type.encode())]
        _send(producer, topic, key, value, headers[event_type])
        if seq % 10_000 == 0:
            producer.poll(0)
            now = time.time()
    _flush(producer)
    return time.perf_counter() - started


def _topic(b: Bench, partitions: int, events: int, keys: int, types: int, pad: int) -> str:
    cache_key = f"s9:{partitions}:{events}:{keys}:{types}:{pad}"
    if cache_key not in b.topics:
        topic = b.admin.create_topic(b.name("s9"), partitions)
        took = produce_shaped(b.bootstrap, topic, events, keys=keys, types=types, pad=pad)
        print(f"bench:   produced {events:,} shaped events to {topic} in {took:.1f} s", flush=True)
        b.topics[cache_key] = topic
    return b.topics[cache_key]


def _shapes(b: Bench) -> list[tuple[str, dict[str, Any]]]:
    s = b.sizes
    base = {"partitions": s.partitions, "keys": s.keys, "types": 1, "pad": 0, "mode": "sync"}
    shapes = [(f"partitions {p}", {**base, "partitions": p}) for p in s.s9_partitions]
    shapes += [(f"event types {t}", {**base, "types": t}) for t in s.s9_types]
    shapes += [(f"payload +{pad:,} B", {**base, "pad": pad}) for pad in s.s9_pads]
    io = {**base, "mode": "io", "sleep_s": s.s2_sleep, "events": s.s9_io_events}
    shapes += [(f"keys {k:,}, 5 ms async handler", {**io, "keys": k}) for k in s.s9_keys]
    return shapes


def run(b: Bench) -> ScenarioResult:
    s = b.sizes
    outcomes: dict[str, list[Outcome]] = {}
    for _ in range(b.repeat):
        for label, shape in _shapes(b):
            events = int(shape.get("events", s.s9_events))
            topic = _topic(b, shape["partitions"], events, shape["keys"], shape["types"],
                           shape["pad"])  # fmt: skip
            spec = {"topic": topic, "events": events, "mode": shape["mode"],
                    "types": shape["types"], "sleep_s": shape.get("sleep_s", 0)}  # fmt: skip
            timeout = 120 + events / 500
            outcomes.setdefault(label, []).append(
                b.run("streamkit_worker", spec, timeout=timeout, tiers=2)
            )
    rows = [row(label, runs) for label, runs in outcomes.items()]
    result = ScenarioResult("s9", "How cost grows", COLUMNS, rows)
    result.notes = [
        f"Sync rows: {s.s9_events:,} events, trivial handler; one dimension moves at a time "
        f"from {s.partitions} partitions, 1 event type, ~170 B envelopes, {s.keys:,} keys.",
        f"Keys rows: {s.s9_io_events:,} events, handler awaits {s.s2_sleep} s (ordering by "
        "key: one lane per key).",
        "'event types N': N handlers, events spread evenly over them.",
    ]
    return result
