"""The baseline: a hand-written confluent-kafka loop.

consume(500) -> ``model_validate_json`` on the typed envelope -> a function call ->
one asynchronous commit per batch (at-least-once: commit after handling).
"""

from __future__ import annotations

from typing import Any

from bench.contenders.common import Recorder
from bench.contenders.rawkafka import close, commit_batch, consumer
from bench.workload import Order, OrderEnvelope


def run(spec: dict[str, Any]) -> dict[str, Any]:
    rec = Recorder(spec)

    def handle(event: Order) -> bool:
        return rec.hit()

    c = consumer(spec)
    validate = OrderEnvelope.model_validate_json
    done = False
    while not done:
        msgs = c.consume(500, 0.1)
        for i, m in enumerate(msgs):
            if m.error() is None and handle(validate(m.value()).data):
                done, msgs = True, msgs[: i + 1]  # commit only what was handled
                break
        if msgs:
            commit_batch(c, msgs)
    close(c)
    return rec.result(spec)
