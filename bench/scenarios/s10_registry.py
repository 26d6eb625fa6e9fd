"""10. Schema registry: Avro and JSON Schema decode + validate vs the JSON envelope.

Same orders, same handler (a pydantic ``Order``, trivial sync function), three encodings:
the JSON envelope, Avro and JSON Schema in the Confluent wire format (written by
confluent-kafka's serializers, no ``event_type`` header: streamkit routes by record name).
Each encoding also runs in a hand-written loop, the registry ones on confluent-kafka's
``AvroDeserializer`` / ``JSONDeserializer`` + ``Order.model_validate``.
"""

from __future__ import annotations

from typing import Any

from bench.context import Bench
from bench.figures import THROUGHPUT_COLUMNS, add_ratios, figure, row
from bench.model import Column, ScenarioResult, Target
from bench.proc import Outcome
from bench.registry import FORMATS, local_registry, produce_encoded

ENVELOPE = "streamkit, JSON envelope"
RAW_ENVELOPE = "raw loop, JSON envelope"
LABELS = {"avro": "Avro", "json-schema": "JSON Schema"}
COLUMNS = [Column(c.key, c.header.replace("raw", "envelope"), c.fmt) for c in THROUGHPUT_COLUMNS]


def _streamkit(fmt: str) -> str:
    return f"streamkit, {LABELS[fmt]}"


def _raw(fmt: str) -> str:
    return f"raw loop, {LABELS[fmt]}Deserializer + pydantic".replace("JSON Schema", "JSON")


def run(b: Bench) -> ScenarioResult:
    s = b.sizes
    with local_registry() as url:
        topics = {"envelope": b.data_topic("s10", s.partitions, s.s10_events, s.keys)}
        for fmt in FORMATS:
            topics[fmt] = _encoded_topic(b, fmt, url)
        runs = _run_all(b, topics, url)
    rows = [row(label, outcomes) for label, outcomes in runs.items()]
    base = next((r for r in rows if r.label == ENVELOPE), None)
    if base is not None:
        add_ratios(rows, base, ("events_per_s", "cpu_us_per_event", "peak_rss_mb"))
    result = ScenarioResult("s10", "Schema registry: decode + validate", COLUMNS, rows)
    result.targets = _targets(rows)
    result.notes = [
        f"{s.s10_events:,} orders on {s.partitions} partitions, {s.keys:,} keys, per "
        "encoding; handler: a sync function of the pydantic Order (validation included).",
        "Avro / JSON Schema values from confluent-kafka's AvroSerializer / JSONSerializer "
        "(schema from streamkit's codec for the same model), no event_type header: "
        "streamkit routes by the record name (schema id -> name cached). Registry: "
        "scripts/schema-registry-local (Apicurio 3.3.3) on this machine.",
        "Raw registry loops: consume(500), the deserializer with its defaults, "
        "Order.model_validate(dict), a function call, one async commit per batch.",
        "'x envelope' columns divide by streamkit on the JSON envelope.",
    ]
    return result


def _encoded_topic(b: Bench, fmt: str, url: str) -> str:
    s = b.sizes
    cache_key = f"s10-{fmt}:{s.partitions}:{s.s10_events}:{s.keys}"
    if cache_key not in b.topics:
        topic = b.admin.create_topic(b.name(f"s10-{fmt}"), s.partitions)
        took = produce_encoded(b.bootstrap, topic, fmt, url, s.s10_events, s.keys)
        print(f"bench:   produced {s.s10_events:,} {fmt} records to {topic} in {took:.1f} s")
        b.topics[cache_key] = topic
    return b.topics[cache_key]


def _run_all(b: Bench, topics: dict[str, str], url: str) -> dict[str, list[Outcome]]:
    events = b.sizes.s10_events
    timeout = 60 + events / 1000
    base: dict[str, Any] = {"events": events, "mode": "sync"}
    plan: list[tuple[str, str, dict[str, Any], int | None]] = [
        (RAW_ENVELOPE, "raw", {"topic": topics["envelope"]}, None),
        (ENVELOPE, "streamkit_worker", {"topic": topics["envelope"]}, 2),
    ]
    for fmt in FORMATS:
        spec = {"topic": topics[fmt], "registry": url}
        plan.append((_raw(fmt), "raw_registry", {**spec, "format": fmt}, None))
        plan.append((_streamkit(fmt), "streamkit_worker", {**spec, "codec": fmt}, 2))
    runs: dict[str, list[Outcome]] = {label: [] for label, _, _, _ in plan}
    for _ in range(b.repeat):  # interleaved: machine noise spreads over every contender
        for label, contender, spec, tiers in plan:
            runs[label].append(b.run(contender, {**base, **spec}, timeout, tiers=tiers))
    return runs


def _targets(rows: list[Any]) -> list[Target]:
    def ratio(a: str, b: str) -> float | None:
        x, y = figure(rows, a, "events_per_s"), figure(rows, b, "events_per_s")
        return x / y if x and y else None

    targets = [
        Target(f"streamkit Avro / {_raw('avro')} (events/s)", ratio(_streamkit("avro"),
               _raw("avro")), 0.8, unit="x"),
        Target(f"streamkit JSON Schema / {_raw('json-schema')} (events/s)",
               ratio(_streamkit("json-schema"), _raw("json-schema")), 0.8, unit="x"),
    ]  # fmt: skip
    return targets
