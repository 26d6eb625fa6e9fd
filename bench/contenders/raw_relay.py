"""The consume -> transform -> publish baseline: a hand-written confluent-kafka loop.

consume(500) -> ``model_validate_json`` -> one produced envelope per event -> ``flush``
(every output settled; a failed delivery stops the loop uncommitted) -> one asynchronous
commit of the batch's offsets: the least an at-least-once relay does (commit before the
flush and a crash loses outputs; commit past a failed delivery and it is lost).
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from bench.contenders.rawkafka import produce_loop
from bench.workload import OrderEnvelope
from streamkit.envelope import HEADER_EVENT_TYPE, encode_envelope, new_event_id

RELAYED = "order.relayed"
HEADERS = [(HEADER_EVENT_TYPE, RELAYED.encode())]


def run(spec: dict[str, Any]) -> dict[str, Any]:
    out = spec["output_topic"]
    validate = OrderEnvelope.model_validate_json

    def relay(p: Producer, m: Any) -> None:
        event = validate(m.value()).data
        data = {"seq": event.seq, "ts": event.ts}
        value = encode_envelope(RELAYED, data, event_id=new_event_id())
        p.produce(out, value, key=event.order_id, headers=HEADERS)

    return produce_loop(spec, relay)
