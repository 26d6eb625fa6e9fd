"""Quix Streams: a StreamingDataFrame with one ``update`` callback (sync; no async API).

Values arrive as bytes and are validated with the same typed envelope model; commits are
Quix's default at-least-once checkpointing.
"""

from __future__ import annotations

from typing import Any

from bench.contenders.common import Recorder, Unavailable
from bench.workload import Order, OrderEnvelope


def run(spec: dict[str, Any]) -> dict[str, Any]:
    try:
        from quixstreams import Application
    except ImportError as exc:
        raise Unavailable(f"quixstreams: {exc}") from None
    rec = Recorder(spec)
    app = Application(
        broker_address=spec["bootstrap"],
        consumer_group=spec["group"],
        auto_offset_reset="earliest",
        loglevel=None,
        state_dir=spec["tmpdir"] + "/quix-state",
    )
    topic = app.topic(spec["topic"], value_deserializer="bytes", key_deserializer="bytes")
    sdf = app.dataframe(topic)
    validate = OrderEnvelope.model_validate_json

    def on_order(event: Order) -> bool:
        return rec.hit()

    def handle(value: bytes) -> None:
        if on_order(validate(value).data):
            app.stop()

    sdf.update(handle)
    app.run()
    return rec.result(spec)
