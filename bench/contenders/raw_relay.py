"""The consume -> transform -> publish baseline: a hand-written confluent-kafka loop.

consume(500) -> ``model_validate_json`` -> one produced envelope per event -> ``flush``
(every output acknowledged) -> one asynchronous commit of the batch's offsets: the least
an at-least-once relay does (commit before the flush and a crash loses outputs).
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from bench.contenders.common import Recorder
from bench.contenders.rawkafka import close, commit_batch, consumer
from bench.workload import OrderEnvelope
from streamkit.envelope import HEADER_EVENT_TYPE, encode_envelope, new_event_id

RELAYED = "order.relayed"
HEADERS = [(HEADER_EVENT_TYPE, RELAYED.encode())]


def run(spec: dict[str, Any]) -> dict[str, Any]:
    rec = Recorder(spec)
    c = consumer(spec)
    # The same producer settings streamkit uses (idempotent, acks=all, lz4, linger 5 ms).
    p = Producer({"bootstrap.servers": spec["bootstrap"], "enable.idempotence": True,
                  "acks": "all", "linger.ms": 5, "compression.type": "lz4"})  # fmt: skip
    out = spec["output_topic"]
    validate = OrderEnvelope.model_validate_json
    done = False
    while not done:
        msgs = c.consume(500, 0.1)
        for i, m in enumerate(msgs):
            if m.error() is not None:
                continue
            event = validate(m.value()).data
            data = {"seq": event.seq, "ts": event.ts}
            value = encode_envelope(RELAYED, data, event_id=new_event_id())
            p.produce(out, value, key=event.order_id, headers=HEADERS)
            if rec.hit():
                done, msgs = True, msgs[: i + 1]  # commit only what was handled
                break
        if msgs:
            p.flush(30)  # every output acknowledged before its input is committed
            commit_batch(c, msgs)
    close(c)
    return rec.result(spec)
