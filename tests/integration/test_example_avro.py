"""The example service's Avro variant, run as documented: `streamkit run` on a real broker
and a real schema registry, orders in, Avro invoices out, bad orders in the DLQ."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import DeserializingConsumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer

from examples.orders.avro_handlers import OrderCreated, router
from examples.orders.produce import produce
from streamkit.codecs.avro import AvroCodec
from tests.integration.cli_helpers import json_of, run_cli
from tests.integration.helpers import Service, ensure_failure_topics, read_all, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(150)]


def _invoices(bootstrap: str, topic: str, url: str, n: int) -> list[dict[str, Any]]:
    with SchemaRegistryClient({"url": url, "timeout": 10}) as client:
        consumer = DeserializingConsumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"reader-{uuid.uuid4().hex[:6]}",
                "auto.offset.reset": "earliest",
                "value.deserializer": AvroDeserializer(client),
            }
        )
        consumer.subscribe([topic])
        out: list[dict[str, Any]] = []
        try:
            wait_until(lambda: out.extend(_values(consumer)) or len(out) >= n, 60, "invoices")
        finally:
            consumer.close()
    return out


def _values(consumer: Any) -> list[Any]:
    msg = consumer.poll(0.2)
    return [] if msg is None or msg.error() else [msg.value()]


def test_the_avro_orders_example_runs_as_documented(
    kafka_bootstrap: str, schema_registry: Any, make_topic: Any, unique: str, tmp_path: Path
) -> None:
    source, out = make_topic("orders-avro", partitions=1), make_topic("invoices-avro", 1)
    group = f"orders-avro-{unique}"
    ensure_failure_topics(kafka_bootstrap, router, source, group)
    codec = AvroCodec(schema_registry.url, models={"order.created": OrderCreated})
    try:  # 20 orders, 2 with a negative amount (i = 7, 17)
        produce(kafka_bootstrap, 20, bad_every=10, topic=source, codec=codec)
    finally:
        codec.close()
    service = Service(
        "examples.orders.avro_handlers",
        bootstrap=kafka_bootstrap,
        group=group,
        topics=[source],
        out=tmp_path / "out",
        extra=["--publish-topic", f"invoice.requested={out}"],
        env={"STREAMKIT_SCHEMA_REGISTRY": schema_registry.url},
    )
    service.wait_ready()
    invoices = _invoices(kafka_bootstrap, out, schema_registry.url, 18)
    dlq = f"{source}.{group}.dlq"
    wait_until(lambda: len(read_all(kafka_bootstrap, dlq, 2, timeout=2)) == 2, 30, "2 dead letters")
    assert service.stop() == 0
    good = sorted(f"o-{i}" for i in range(20) if i % 10 != 7)
    assert sorted(i["order_id"] for i in invoices) == good
    where = ["-p", "0", "-o", "0", "-b", kafka_bootstrap]
    shown = json_of(
        run_cli("dlq", "show", dlq, *where, "--json", "--schema-registry", schema_registry.url)
    )
    assert shown["payload"] == {"order_id": "o-7", "amount_cents": -1}
    assert shown["schema"]["name"] == "com.example.orders.OrderCreated"
