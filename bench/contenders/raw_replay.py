"""Scenario 6's reference: a hand-written consume -> produce loop over a DLQ.

consume(500) -> produce each record as it is (key, value, headers) to the retry tier ->
``flush`` (every copy acknowledged) -> one asynchronous commit of the batch: the least a
replay that loses nothing does. No header rewriting and no ledger (streamkit's replay
writes a ledger record per replayed record, so a rerun skips it).
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from bench.contenders.common import Recorder
from bench.contenders.rawkafka import close, commit_batch, consumer


def run(spec: dict[str, Any]) -> dict[str, Any]:
    rec = Recorder(spec)
    c = consumer(spec)
    # The producer settings streamkit's replay uses (idempotent, acks=all, lz4, linger 5 ms).
    p = Producer({"bootstrap.servers": spec["bootstrap"], "enable.idempotence": True,
                  "acks": "all", "linger.ms": 5, "compression.type": "lz4"})  # fmt: skip
    out = spec["output_topic"]
    done = False
    while not done:
        msgs = c.consume(500, 0.1)
        for i, m in enumerate(msgs):
            if m.error() is not None:
                continue
            p.produce(out, m.value(), key=m.key(), headers=m.headers())
            if rec.hit():
                done, msgs = True, msgs[: i + 1]  # commit only what was copied
                break
        if msgs:
            p.flush(30)  # every copy acknowledged before its source is committed
            commit_batch(c, msgs)
    close(c)
    return rec.result(spec)
