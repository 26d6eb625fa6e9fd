"""Quix Streams: a StreamingDataFrame with one ``update`` callback (sync; no async API).

Values arrive as bytes and are validated with the same typed envelope model; commits are
Quix's default at-least-once checkpointing. ``mode: relay`` (scenario 8): ``apply`` builds
one output envelope per event, ``set_headers`` marks it ``order.relayed`` and
``sdf.to_topic`` produces it under the input's key (the order id); each checkpoint (every
5 s by default, and at stop) flushes the producer before it commits the offsets.
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
    if spec.get("mode") == "relay":
        _relay(app, sdf, spec, rec)
        app.run()
        return rec.result(spec)
    validate = OrderEnvelope.model_validate_json

    def on_order(event: Order) -> bool:
        return rec.hit()

    def handle(value: bytes) -> None:
        if on_order(validate(value).data):
            app.stop()

    sdf.update(handle)
    app.run()
    return rec.result(spec)


def _relay(app: Any, sdf: Any, spec: dict[str, Any], rec: Recorder) -> None:
    """consume -> validate -> one envelope to ``output_topic`` per event (sdf.to_topic)."""
    from bench.contenders.relay_common import HEADER_EVENT_TYPE, RELAYED, relayed

    out = app.topic(spec["output_topic"], value_serializer="bytes", key_serializer="bytes")
    validate = OrderEnvelope.model_validate_json
    headers = [(HEADER_EVENT_TYPE, RELAYED.encode())]

    def transform(value: bytes) -> bytes:
        event = validate(value).data
        return relayed(event.seq, event.ts)

    def handled(_: bytes) -> None:
        if rec.hit():
            app.stop()  # the final checkpoint flushes the producer, then commits

    sdf = sdf.apply(transform).set_headers(lambda value, key, timestamp, h: headers)
    sdf.to_topic(out)  # key: the input record's key, which is the order id
    sdf.update(handled)
