"""The registry baseline: a hand-written loop on confluent-kafka's own deserializer.

consume(500) -> ``AvroDeserializer`` (or ``JSONDeserializer``) with its defaults ->
``Order.model_validate`` -> a function call -> one asynchronous commit per batch: what a
team writes by hand to get pydantic models out of registry-encoded records.
"""

from __future__ import annotations

from typing import Any

from bench.contenders.common import Recorder
from bench.contenders.rawkafka import close, commit_batch, consumer
from bench.workload import Order


def run(spec: dict[str, Any]) -> dict[str, Any]:
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    rec = Recorder(spec)

    def handle(event: Order) -> bool:
        return rec.hit()

    # A bounded call, as streamkit's client makes it: the schema is fetched once per id,
    # and a registry that does not answer fails the run instead of hanging it.
    client = SchemaRegistryClient({"url": spec["registry"], "timeout": 5})
    if spec["format"] == "avro":
        deserialize = AvroDeserializer(client)
    else:
        deserialize = JSONDeserializer(None, schema_registry_client=client)
    ctx = SerializationContext(spec["topic"], MessageField.VALUE)
    validate = Order.model_validate
    c = consumer(spec)
    done = False
    while not done:
        msgs = c.consume(500, 0.1)
        for i, m in enumerate(msgs):
            if m.error() is None and handle(validate(deserialize(m.value(), ctx))):
                done, msgs = True, msgs[: i + 1]  # commit only what was handled
                break
        if msgs:
            commit_batch(c, msgs)
    close(c)
    client.close()
    return rec.result(spec)
