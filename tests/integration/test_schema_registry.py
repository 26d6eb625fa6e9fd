"""Avro and JSON Schema events through a real schema registry and a real broker.

Records come from plain confluent-kafka serializers (another team's producer: no
``event_type`` header, routed by the schema's record name) and what handlers publish is
read back by a plain ``DeserializingConsumer``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from confluent_kafka import DeserializingConsumer
from confluent_kafka.error import ValueDeserializationError
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from dataclasses_avroschema.pydantic import AvroBaseModel
from pydantic import BaseModel

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from streamkit.codecs.avro import AvroCodec
from streamkit.codecs.jsonschema import JsonSchemaCodec
from streamkit.codecs.registry import RegistryCodec
from tests.integration.helpers import (
    committed,
    ensure_failure_topics,
    free_port,
    produce_raw,
    read_all,
    wait_until,
)
from tests.integration.inproc import RunningWorker, settings

pytestmark = pytest.mark.kafka


class OrderCreated(AvroBaseModel):
    order_id: str
    amount_cents: int

    class Meta:
        namespace = f"com.acme{uuid.uuid4().hex[:6]}"  # fresh subjects per session


class OrderPaid(AvroBaseModel):
    order_id: str
    paid: bool

    class Meta:
        namespace = OrderCreated.Meta.namespace


class InvoiceRequested(AvroBaseModel):
    order_id: str
    total_cents: int

    class Meta:
        namespace = OrderCreated.Meta.namespace


def _foreign(serializer: Any, topic: str, objs: list[BaseModel]) -> list[Any]:
    """Values as another team's producer writes them (no event_type header)."""
    ctx = SerializationContext(topic, MessageField.VALUE)
    return [(o.order_id.encode(), serializer(o.model_dump(), ctx), None) for o in objs]  # type: ignore[attr-defined]


def _avro_serializer(client: Any, model: type[AvroBaseModel]) -> AvroSerializer:
    conf = {"subject.name.strategy": topic_record_subject_name_strategy}
    return AvroSerializer(client, model.avro_schema(), conf=conf)


@pytest.fixture
def client(schema_registry: Any) -> Any:
    """A plain confluent-kafka registry client (another team's code)."""
    # Bounded: Apicurio was seen to stall one request under load; unbounded, that hangs the test.
    with SchemaRegistryClient({"url": schema_registry.url, "timeout": 10}) as plain:
        yield plain


@pytest.fixture
def closing(request: pytest.FixtureRequest) -> Any:
    """Register a codec to close after the test."""

    def close_later(codec: RegistryCodec) -> RegistryCodec:
        request.addfinalizer(codec.close)
        return codec

    return close_later


def _read_back(bootstrap: str, topic: str, deserializer: Any, n: int) -> list[Any]:
    """Read ``n`` records with a plain ``DeserializingConsumer``, as another team would.

    A registry request that timed out (Apicurio was seen to stall one under load) fails
    that record's deserialization; it is tried again from the record the error carries.
    """
    consumer = DeserializingConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "value.deserializer": deserializer,
        }
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + 30
    try:
        while len(out) < n and time.monotonic() < deadline:
            try:
                msg = consumer.poll(0.2)
            except ValueDeserializationError as exc:
                out.append(_deserialize(deserializer, topic, exc.kafka_message.value()))
                continue
            if msg is not None and msg.error() is None:
                out.append(msg.value())
    finally:
        consumer.close()
    return out


def _deserialize(deserializer: Any, topic: str, value: bytes, tries: int = 2) -> Any:
    ctx = SerializationContext(topic, MessageField.VALUE)
    for attempt in range(tries):
        try:
            return deserializer(value, ctx)
        except Exception:  # the registry did not answer in time (Apicurio under load)
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def _pipeline(
    codec: RegistryCodec, source: str, out: str, retry: RetryPolicy | None = None
) -> tuple[Router, list[Any]]:
    """order.created -> invoice.requested (published with the codec); order.paid counted."""
    topics = {"invoice.requested": out}
    router = Router(topics=[source], codec=codec, publish_topics=topics, retry=retry)
    seen: list[Any] = []

    @router.handler("order.created")
    async def created(event: OrderCreated, ctx: Context) -> None:
        seen.append(event)
        invoice = InvoiceRequested(order_id=event.order_id, total_cents=event.amount_cents + 1)
        await ctx.publish("invoice.requested", invoice, key=event.order_id)

    @router.handler("order.paid")
    def paid(event: OrderPaid) -> None:
        seen.append(event)

    return router, seen


@pytest.mark.timeout(120)
def test_avro_record_types_on_one_topic_route_decode_and_publish(
    kafka_bootstrap: str,
    schema_registry: Any,
    make_topic: Any,
    unique: str,
    client: Any,
    closing: Any,
) -> None:
    source, out = make_topic("avro-in", partitions=2), make_topic("avro-out", partitions=1)
    codec = closing(
        AvroCodec(
            schema_registry.url,
            models={"order.created": OrderCreated, "order.paid": OrderPaid},
            subject_strategy="topic-record",
        )
    )
    router, seen = _pipeline(codec, source, out)
    created = [OrderCreated(order_id=f"o{i}", amount_cents=i) for i in range(20)]
    paid = [OrderPaid(order_id=f"o{i}", paid=True) for i in range(10)]
    records = _foreign(_avro_serializer(client, OrderCreated), source, created)
    records += _foreign(_avro_serializer(client, OrderPaid), source, paid)
    produce_raw(kafka_bootstrap, source, records)
    with RunningWorker(router, settings(kafka_bootstrap, f"g-{unique}", [source])):
        wait_until(lambda: len(seen) == 30, 30, "30 events handled")
    assert sorted(e.order_id for e in seen if isinstance(e, OrderCreated)) == sorted(
        e.order_id for e in created
    )
    assert sum(isinstance(e, OrderPaid) for e in seen) == 10
    invoices = _read_back(kafka_bootstrap, out, AvroDeserializer(client), 20)
    assert sorted((i["order_id"], i["total_cents"]) for i in invoices) == sorted(
        (e.order_id, e.amount_cents + 1) for e in created
    )
    subject = f"{out}-{OrderCreated.Meta.namespace}.InvoiceRequested"
    assert subject in client.get_subjects(), "ctx.publish registered under topic-record"


class Shipment(BaseModel):
    order_id: str
    carrier: str


@pytest.mark.timeout(120)
def test_json_schema_in_handler_out_and_bad_input_to_the_dlq(
    kafka_bootstrap: str,
    schema_registry: Any,
    make_topic: Any,
    unique: str,
    client: Any,
    closing: Any,
) -> None:
    source, out = make_topic("js-in", partitions=1), make_topic("js-out", partitions=1)
    group = f"g-{unique}"
    codec = closing(JsonSchemaCodec(schema_registry.url, names={"Shipment": "shipment.sent"}))
    router = Router(topics=[source], codec=codec, publish_topics={"shipment.seen": out})
    seen: list[Shipment] = []

    @router.handler("shipment.sent")
    async def shipped(event: Shipment, ctx: Context) -> None:
        seen.append(event)
        await ctx.publish("shipment.seen", event, key=event.order_id)

    ensure_failure_topics(kafka_bootstrap, router, source, group)
    ser = JSONSerializer(orjson_schema(Shipment), client)
    ctx = SerializationContext(source, MessageField.VALUE)
    good = [Shipment(order_id=f"s{i}", carrier="dhl") for i in range(5)]
    records = [(s.order_id.encode(), ser(s.model_dump(), ctx), None) for s in good]
    valid_id = records[0][1][1:5]
    bad = [
        b"\x00" + (999_999).to_bytes(4, "big") + b'{"order_id": "x"}',  # unknown schema id
        b"\x00" + valid_id + b'{"order_id": 1, "carrier": "dhl"}',  # fails its schema
        b"plain text",  # not the wire format
    ]
    records += [(b"bad", value, None) for value in bad]
    produce_raw(kafka_bootstrap, source, records)
    with RunningWorker(router, settings(kafka_bootstrap, group, [source])):
        dlq = wait_until(
            lambda: read_all(kafka_bootstrap, f"{source}.{group}.dlq", 3, timeout=2)[:3] or None,
            30,
            "three dead letters",
        )
        wait_until(lambda: committed(kafka_bootstrap, group, source, 1)[0] == 8, 30, "commit")
    assert [s.order_id for s in seen] == [s.order_id for s in good]
    assert sorted(m.value() for m in dlq) == sorted(bad), "dead letters keep their bytes"
    back = _read_back(
        kafka_bootstrap, out, JSONDeserializer(None, schema_registry_client=client), 5
    )
    assert [b["order_id"] for b in back] == [s.order_id for s in good]


def orjson_schema(model: type[BaseModel]) -> str:
    return JsonSchemaCodec.schema_of(None, model)  # type: ignore[arg-type]


def _sample(worker: RunningWorker, name: str) -> float:
    labels = {"group": worker.worker.group, "dependency": "schema-registry"}
    return worker.worker.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.timeout(240)
def test_registry_outage_longer_than_the_retry_budget_holds_never_dead_letters(
    kafka_bootstrap: str,
    schema_registry: Any,
    make_topic: Any,
    unique: str,
    client: Any,
    closing: Any,
) -> None:
    if not schema_registry.owned:
        pytest.skip("needs the local registry to stop and start it")
    source, out = make_topic("outage", partitions=1), make_topic("outage-out", partitions=1)
    group = f"g-{unique}"
    codec = closing(
        AvroCodec(
            schema_registry.url,
            models={"order.created": OrderCreated, "order.paid": OrderPaid},
            subject_strategy="topic-record",
        )
    )
    # A retry budget of ~0.3 s: were an outage a handler failure, the new schema's
    # records would be in the DLQ within a second. The outage below lasts far longer.
    policy = RetryPolicy(max_attempts=2, backoff=FixedBackoff(0.3))
    router, seen = _pipeline(codec, source, out, retry=policy)
    ensure_failure_topics(kafka_bootstrap, router, source, group)
    before = [OrderCreated(order_id=f"a{i}", amount_cents=i) for i in range(5)]
    during = [OrderCreated(order_id=f"b{i}", amount_cents=i) for i in range(5)]
    new_type = [OrderPaid(order_id=f"p{i}", paid=True) for i in range(3)]
    created_ser = _avro_serializer(client, OrderCreated)
    first = _foreign(created_ser, source, before)
    later = _foreign(created_ser, source, during)  # a known schema id (cached)
    # Registered now, never seen by the worker: it must fetch this schema id mid-outage.
    unseen = _foreign(_avro_serializer(client, OrderPaid), source, new_type)
    dlq, tier1 = f"{source}.{group}.dlq", router.topic_names.retry(source, group, 1)
    with RunningWorker(router, settings(kafka_bootstrap, group, [source])) as worker:
        produce_raw(kafka_bootstrap, source, first)
        wait_until(lambda: len(seen) == 5, 30, "the first events (schemas now cached)")
        wait_until(lambda: committed(kafka_bootstrap, group, source, 1)[0] == 5, 30, "commit")
        schema_registry.run("stop")
        stopped = time.monotonic()
        try:
            produce_raw(kafka_bootstrap, source, unseen + later)
            wait_until(lambda: len(seen) == 10, 30, "known schemas flowing during the outage")
            held = "streamkit_waiting_on_dependency"
            wait_until(lambda: _sample(worker, held) == 3, 30, "the unseen schema's 3 held")
            # Tried again and again (one probe per backoff interval), well past the budget.
            waits = "streamkit_dependency_waits_total"
            wait_until(lambda: _sample(worker, waits) >= 3 + 4, 30, "four probes")
            assert time.monotonic() - stopped > 5 * 0.3, "the outage outlasted the budget"
            assert not any(isinstance(e, OrderPaid) for e in seen)
            assert read_all(kafka_bootstrap, dlq, 1, timeout=1) == []
            assert read_all(kafka_bootstrap, tier1, 1, timeout=1) == [], "a hold, not a retry"
            assert committed(kafka_bootstrap, group, source, 1)[0] == 5, "offsets held"
        finally:
            schema_registry.run("start")
        wait_until(lambda: len(seen) == 13, 60, "the new schema once the registry is back")
        wait_until(lambda: committed(kafka_bootstrap, group, source, 1)[0] == 13, 30, "commit")
        assert _sample(worker, "streamkit_waiting_on_dependency") == 0
    assert read_all(kafka_bootstrap, dlq, 1, timeout=1) == []
    assert read_all(kafka_bootstrap, tier1, 1, timeout=1) == []
    assert len(_read_back(kafka_bootstrap, out, AvroDeserializer(client), 10)) == 10


@pytest.mark.timeout(120)
def test_shutdown_during_an_outage_is_prompt_and_the_held_records_come_back(
    kafka_bootstrap: str,
    schema_registry: Any,
    make_topic: Any,
    unique: str,
    client: Any,
    closing: Any,
) -> None:
    source, out = make_topic("held-stop", partitions=1), make_topic("held-stop-out", 1)
    group = f"g-{unique}"

    def service(url: str) -> tuple[RunningWorker, list[Any]]:
        codec = closing(AvroCodec(url, models={"order.paid": OrderPaid}))
        router, seen = _pipeline(codec, source, out)
        return RunningWorker(router, settings(kafka_bootstrap, group, [source],
                                              shutdown_timeout=30)), seen  # fmt: skip

    paid = [OrderPaid(order_id=f"h{i}", paid=True) for i in range(3)]
    serializer = _avro_serializer(client, OrderPaid)
    produce_raw(kafka_bootstrap, source, _foreign(serializer, source, paid))
    # The first worker's registry refuses every connection (nothing listens on its port):
    # the same outage as a stopped registry, without restarting one.
    first, seen = service(f"http://127.0.0.1:{free_port()}")
    ensure_failure_topics(kafka_bootstrap, first.worker.router, source, group)
    with first:
        held = "streamkit_waiting_on_dependency"
        wait_until(lambda: _sample(first, held) == 3, 30, "the 3 records held")
        started = time.monotonic()
        first.stop()
        # The drain does not wait for held records: well inside shutdown_timeout.
        assert time.monotonic() - started < 10, "shutdown waited for the held records"
    assert seen == []
    assert committed(kafka_bootstrap, group, source, 1)[0] in (-1001, 0), "held: uncommitted"
    second, seen = service(schema_registry.url)
    with second:
        wait_until(lambda: len(seen) == 3, 30, "the held records, redelivered")
        wait_until(lambda: committed(kafka_bootstrap, group, source, 1)[0] == 3, 30, "commit")
    assert read_all(kafka_bootstrap, f"{source}.{group}.dlq", 1, timeout=1) == []
