"""`streamkit dlq show` and `replay` with registry-encoded dead letters (real broker, registry).

The dead letters are made by a real worker: Avro records from another team's producer
that fail model validation. `--schema-registry` shows their schema and decoded body;
replay sends their bytes on untouched.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from dataclasses_avroschema.pydantic import AvroBaseModel
from pydantic import field_validator

from streamkit import Router
from streamkit.codecs.avro import AvroCodec
from tests.integration.cli_helpers import json_of, run_cli
from tests.integration.helpers import (
    ensure_failure_topics,
    free_port,
    produce_raw,
    read_all,
    wait_until,
)
from tests.integration.inproc import RunningWorker, settings

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]
NAMESPACE = f"com.dlqview{uuid.uuid4().hex[:6]}"


class Refund(AvroBaseModel):
    order_id: str
    amount_cents: int

    class Meta:
        namespace = NAMESPACE

    @field_validator("amount_cents")
    @classmethod
    def positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("a refund is positive")
        return value


@pytest.fixture
def dead_letters(
    kafka_bootstrap: str, schema_registry: Any, make_topic: Any, unique: str
) -> tuple[str, list[bytes], int]:
    """Three Avro records dead-lettered for a failed validation: (DLQ, values, schema id)."""
    source, group = make_topic("refunds", partitions=1), f"g-{unique}"
    with SchemaRegistryClient({"url": schema_registry.url, "timeout": 10}) as client:
        serialize = AvroSerializer(client, Refund.avro_schema())
        ctx = SerializationContext(source, MessageField.VALUE)
        values = [serialize({"order_id": f"r{i}", "amount_cents": -i}, ctx) for i in range(3)]
    codec = AvroCodec(schema_registry.url, models={"refund": Refund})
    router = Router(topics=[source], codec=codec)  # routed by the record name (models=)

    @router.handler("refund")
    def refund(event: Refund) -> None:  # never reached: every record fails validation
        raise AssertionError(event)

    ensure_failure_topics(kafka_bootstrap, router, source, group)
    dlq = f"{source}.{group}.dlq"
    produce_raw(kafka_bootstrap, source, [(b"k", v, None) for v in values])
    try:
        with RunningWorker(router, settings(kafka_bootstrap, group, [source])):
            wait_until(lambda: len(read_all(kafka_bootstrap, dlq, 3, 2)) == 3, 30, "dead letters")
    finally:
        codec.close()
    return dlq, values, int.from_bytes(values[0][1:5], "big")


def test_dlq_show_decodes_a_registry_record_with_its_schema(
    kafka_bootstrap: str, schema_registry: Any, dead_letters: tuple[str, list[bytes], int]
) -> None:
    dlq, _values, schema_id = dead_letters
    b = ["-b", kafka_bootstrap]
    shown = json_of(
        run_cli("dlq", "show", dlq, "-p", "0", "-o", "1", "--json", "--schema-registry",
                schema_registry.url, *b)
    )  # fmt: skip
    assert shown["schema"] == {"id": schema_id, "type": "AVRO", "name": f"{NAMESPACE}.Refund"}
    assert shown["payload"] == {"order_id": "r1", "amount_cents": -1}
    assert shown["payload_is_json"] is True
    assert shown["event_type"] == f"{NAMESPACE}.Refund"
    assert shown["error_type"] == "SchemaError"
    # The same through the environment, as a person reads it.
    human = run_cli("dlq", "show", dlq, "-p", "0", "-o", "2", *b,
                    env_vars={"STREAMKIT_SCHEMA_REGISTRY": schema_registry.url})  # fmt: skip
    assert human.exit_code == 0, human.stderr
    assert f"schema: id {schema_id}, AVRO, {NAMESPACE}.Refund" in human.stdout
    assert '"order_id": "r2"' in human.stdout
    listed = json_of(
        run_cli("dlq", "list", dlq, "--json", "--schema-registry", schema_registry.url, *b)
    )
    assert [r["event_type"] for r in listed["records"]] == [f"{NAMESPACE}.Refund"] * 3
    # Without a registry: the raw bytes, escaped, and no schema.
    raw = json_of(run_cli("dlq", "show", dlq, "-p", "0", "-o", "0", "--json", *b))
    assert "schema" not in raw and raw["payload_is_json"] is False
    # A registry that does not answer: still shown, the reason in the schema line.
    dead = f"http://127.0.0.1:{free_port()}"
    down = run_cli("dlq", "show", dlq, "-p", "0", "-o", "0", "--schema-registry", dead, *b)
    assert down.exit_code == 0, down.stderr
    assert f"schema: id {schema_id} (not decoded: schema registry unreachable" in down.stdout


def test_replay_names_registry_records_and_keeps_their_bytes(
    kafka_bootstrap: str,
    schema_registry: Any,
    make_topic: Any,
    dead_letters: tuple[str, list[bytes], int],
) -> None:
    dlq, values, schema_id = dead_letters
    b = ["-b", kafka_bootstrap]
    dry = json_of(
        run_cli("replay", dlq, "--dry-run", "--json", "--schema-registry", schema_registry.url, *b)
    )
    assert [s["event_type"] for s in dry["sample"]] == [f"{NAMESPACE}.Refund"] * 3
    assert {s["schema"]["id"] for s in dry["sample"]} == {schema_id}
    target = make_topic("refunds-again", partitions=1)
    done = json_of(
        run_cli("replay", dlq, "--to", target, "--yes", "--json",
                "--schema-registry", schema_registry.url, *b)
    )  # fmt: skip
    assert done["replayed"] == 3
    replayed = read_all(kafka_bootstrap, target, 3)
    assert [m.value() for m in replayed] == values, "replayed bytes are the original bytes"
    with SchemaRegistryClient({"url": schema_registry.url, "timeout": 10}) as client:
        read = AvroDeserializer(client)
        ctx = SerializationContext(target, MessageField.VALUE)
        assert [read(m.value(), ctx)["order_id"] for m in replayed] == ["r0", "r1", "r2"]
