"""Scenario 3's reference: a raw ``poll(0.1)`` loop, validate, note the latency, store the offset.

The least an at-least-once consumer does per record when latency, not throughput, is the
point: one record per poll, the offset stored after handling, committed every 1 s by the
client (``enable.auto.commit`` with ``enable.auto.offset.store=false``), as streamkit commits.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer

from bench.contenders.common import Recorder, touch
from bench.workload import OrderEnvelope


def run(spec: dict[str, Any]) -> dict[str, Any]:
    rec = Recorder(spec)
    c = Consumer(
        {
            "bootstrap.servers": spec["bootstrap"],
            "group.id": spec["group"],
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 1000,
            "enable.auto.offset.store": False,
            **spec.get("kafka", {}),
        }
    )
    c.subscribe([spec["topic"]])
    validate = OrderEnvelope.model_validate_json
    _wait_assigned(c, spec)
    next_progress = 0.0
    while rec.n < rec.target:
        m = c.poll(0.1)
        now = time.monotonic()
        if now >= next_progress:
            touch(spec.get("progress"), str(rec.n))
            next_progress = now + 0.2
        if m is None or m.error() is not None:
            continue
        event = validate(m.value()).data
        if event.seq >= 0:  # warm-up events have negative sequence numbers
            rec.latency(event.ts)
        rec.hit()
        c.store_offsets(m)
    touch(spec.get("progress"), str(rec.n))
    c.close()
    return rec.result(spec)


def _wait_assigned(c: Consumer, spec: dict[str, Any]) -> None:
    deadline = time.monotonic() + 60
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(0.1)  # nothing is produced before "ready": this only joins the group
    touch(spec.get("ready"), "ready")
