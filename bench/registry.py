"""Scenario 10's parent side: the local schema registry and registry-encoded data.

The registry is ``scripts/schema-registry-local`` (Apicurio, Java 21+), or
``STREAMKIT_BENCH_SCHEMA_REGISTRY`` (a URL) if set; one the bench started is stopped at
the end. Values are written by confluent-kafka's own serializers, as another team's
producer would: Confluent wire format, no ``event_type`` header (routed by record name).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from bench.kafka import FAST_PRODUCER, _flush, _send
from bench.workload import Order, key_of
from streamkit.codecs.avro import AvroCodec
from streamkit.codecs.jsonschema import JsonSchemaCodec

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "schema-registry-local"
FORMATS = ("avro", "json-schema")


def _script(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), command], capture_output=True, text=True, timeout=timeout, check=False
    )


@contextmanager
def local_registry() -> Iterator[str]:
    """The registry's URL for the scenario; started (and then stopped) if need be."""
    given = os.environ.get("STREAMKIT_BENCH_SCHEMA_REGISTRY")
    if given:
        yield given
        return
    was_running = _script("status", 60).returncode == 0
    started = _script("start", 600)
    if started.returncode != 0:
        raise RuntimeError(f"schema-registry-local start failed: {started.stderr.strip()}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        if not was_running:
            _script("stop", 60)


def schema_text(fmt: str, url: str) -> str:
    """The schema streamkit derives from the bench's ``Order`` model, in ``fmt``."""
    codec = AvroCodec(url) if fmt == "avro" else JsonSchemaCodec(url)
    try:
        return codec.schema_of(Order)
    finally:
        codec.close()


def produce_encoded(
    bootstrap: str, topic: str, fmt: str, url: str, events: int, keys: int
) -> float:
    """Produce ``events`` orders in ``fmt`` (schema registered on the way); seconds taken."""
    with SchemaRegistryClient({"url": url}) as client:
        serializer = _serializer(fmt, client, schema_text(fmt, url))
        ctx = SerializationContext(topic, MessageField.VALUE)
        producer = Producer({"bootstrap.servers": bootstrap, **FAST_PRODUCER})
        started, now = time.perf_counter(), time.time()
        for seq in range(events):
            key = key_of(seq, keys)
            data = {"order_id": key, "seq": seq, "amount_cents": 1000 + seq % 9000, "ts": now}
            _send(producer, topic, key, serializer(data, ctx), [])
            if seq % 10_000 == 0:
                producer.poll(0)
        _flush(producer)
        return time.perf_counter() - started


def _serializer(fmt: str, client: Any, schema: str) -> Callable[[Any, Any], bytes]:
    if fmt == "avro":
        return AvroSerializer(client, schema)  # type: ignore[no-any-return]
    return JSONSerializer(schema, client)  # type: ignore[no-any-return]
