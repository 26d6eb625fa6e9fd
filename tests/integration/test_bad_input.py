"""Bad input goes to the DLQ at once, byte for byte, with the reason; the partition moves on."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from streamkit import Router
from streamkit import envelope as env
from streamkit.envelope import encode_envelope
from tests.integration.helpers import (
    committed,
    ensure_failure_topics,
    produce_raw,
    read_all,
    wait_until,
)
from tests.integration.inproc import RunningWorker, settings

pytestmark = pytest.mark.kafka


class Order(BaseModel):
    order_id: str
    amount_cents: int


def good(i: int) -> bytes:
    return encode_envelope("order.created", {"order_id": str(i), "amount_cents": i})


BAD: dict[str, tuple[bytes | None, list[tuple[str, bytes]]]] = {
    "invalid-json": (b"{oops", [("event_type", b"order.created")]),
    "not-utf8": (b"\xff\xfe\xfa", [("event_type", b"order.created")]),
    "schema": (
        encode_envelope("order.created", {"order_id": 1}),
        [("event_type", b"order.created")],
    ),
    "unknown-type": (encode_envelope("order.unknown", {}), [("event_type", b"order.unknown")]),
    "missing-type": (b'{"data": {}}', []),
    "tombstone": (None, [("event_type", b"order.created")]),
    "empty": (b"", [("event_type", b"order.created")]),
}
REASONS = {
    "invalid-json": "DecodeError",
    "not-utf8": "DecodeError",
    "schema": "SchemaError",
    "unknown-type": "UnknownEventType",
    "missing-type": "UnknownEventType",
    "tombstone": "DecodeError",
    "empty": "DecodeError",
}


def test_each_bad_record_lands_in_the_dlq_and_the_partition_moves_on(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    topic = make_topic("bad", partitions=1)
    group = f"g-{unique}"
    router = Router(topics=[topic])
    handled: list[str] = []

    @router.handler("order.created")
    def on_order(order: Order) -> None:
        handled.append(order.order_id)

    ensure_failure_topics(kafka_bootstrap, router, topic, group)
    records: list[tuple[bytes | None, bytes | None, Any]] = []
    for i, (case, (value, headers)) in enumerate(BAD.items()):
        records.append((case.encode(), value, [*headers, ("trace", b"t-%d" % i)]))
        records.append((b"k", good(i), [("event_type", b"order.created")]))
    produce_raw(kafka_bootstrap, topic, records)

    with RunningWorker(router, settings(kafka_bootstrap, group, [topic])):
        wait_until(lambda: len(handled) == len(BAD), 30, "the good events behind the bad ones")
        wait_until(
            lambda: committed(kafka_bootstrap, group, topic, 1)[0] == len(records),
            30,
            "the source offset to move past every record",
        )
    dead = {m.key().decode(): m for m in read_all(kafka_bootstrap, f"{topic}.{group}.dlq", 7)}
    assert set(dead) == set(BAD)
    for case, (value, headers) in BAD.items():
        msg = dead[case]
        got = msg.headers()
        assert msg.value() == value, case  # byte for byte, None stays None
        assert env.header_str(got, env.H_ERROR_TYPE) == REASONS[case], case
        assert env.header_str(got, env.H_ERROR_MESSAGE), case
        assert env.header_str(got, env.H_ORIGINAL_TOPIC) == topic
        assert env.header_int(got, env.H_ORIGINAL_OFFSET) == 2 * list(BAD).index(case)
        assert env.header_int(got, env.H_ORIGINAL_PARTITION) == 0
        assert env.header_int(got, env.H_ORIGINAL_TIMESTAMP)
        assert env.header_str(got, env.H_GROUP) == group
        for name, raw in headers:  # the original headers are kept
            assert (name, raw) in got
        assert env.header_value(got, "trace") is not None


def test_unknown_types_can_be_skipped_instead(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    topic = make_topic("skip", partitions=1)
    group = f"g-{unique}"
    router = Router(topics=[topic], on_unknown="skip")
    handled: list[str] = []

    @router.handler("order.created")
    def on_order(order: Order) -> None:
        handled.append(order.order_id)

    produce_raw(
        kafka_bootstrap,
        topic,
        [
            (b"k", encode_envelope("order.other", {}), [("event_type", b"order.other")]),
            (b"k", good(1), [("event_type", b"order.created")]),
        ],
    )
    with RunningWorker(router, settings(kafka_bootstrap, group, [topic], check_topics=False)) as w:
        wait_until(lambda: handled == ["1"], 30, "the known event")
        wait_until(lambda: committed(kafka_bootstrap, group, topic, 1)[0] == 2, 30, "commit")
        skipped = w.worker.metrics.registry.get_sample_value(
            "streamkit_events_total",
            {"group": group, "topic": topic, "event_type": "__unknown__", "outcome": "skipped"},
        )
    assert skipped == 1
