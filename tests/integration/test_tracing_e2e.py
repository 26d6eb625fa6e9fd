"""One trace from an HTTP request through retries, a DLQ and a replay, read back from Jaeger.

Real broker, real Jaeger (scripts/jaeger-local), spans over OTLP/HTTP. The orders service
runs in-process (its own tracer provider); the invoices service is `streamkit run` with
``STREAMKIT_TRACING=otlp``, so the CLI's wiring and the standard OTEL_* variables are part
of what is tested.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from streamkit import Context, FixedBackoff, Producer, RetryPolicy, Router
from streamkit.observability.tracing import Tracing, traced_headers
from tests.integration.cli_helpers import run_cli
from tests.integration.helpers import (
    Service,
    ensure_failure_topics,
    produce_events,
    read_all,
    wait_until,
)
from tests.integration.inproc import RunningWorker, settings
from tests.integration.jaeger import Jaeger, jaeger
from tests.integration.prom import PrometheusServer, prometheus_binary
from tests.integration.services.traced import router as invoices_router

__all__ = ["jaeger"]  # the session fixture, used by name below

pytestmark = pytest.mark.kafka


@pytest.fixture
def providers(jaeger: Jaeger, unique: str) -> Iterator[dict[str, TracerProvider]]:
    """One tracer provider per in-process "service", exporting each span as it ends."""
    made: dict[str, TracerProvider] = {}
    for name in ("http", "orders"):
        provider = TracerProvider(resource=Resource.create({"service.name": f"{name}-{unique}"}))
        exporter = OTLPSpanExporter(endpoint=f"{jaeger.otlp}/v1/traces", timeout=5)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        made[name] = provider
    yield made
    for provider in made.values():
        provider.shutdown()


def _post_order(bootstrap: str, topic: str, provider: TracerProvider) -> str:
    """What a web service does: publish ``order.created`` inside its request span."""
    tracer = provider.get_tracer("http")
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as span:
        headers = traced_headers(topic, tracing=Tracing(provider))
        with Producer({"bootstrap.servers": bootstrap}) as producer:
            producer.publish(
                "order.created", {"order_id": "o1"}, key="o1", topic=topic, headers=headers
            ).result(30)
    return f"{span.get_span_context().trace_id:032x}"


def _spans(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """Jaeger's spans, flattened: name, id, service, tags, parents and links."""
    out = []
    for span in trace["spans"]:
        refs = span.get("references", [])
        out.append(
            {
                "name": span["operationName"],
                "id": span["spanID"],
                "trace": span["traceID"],
                "service": trace["processes"][span["processID"]]["serviceName"],
                "tags": {t["key"]: t["value"] for t in span["tags"]},
                "parents": [r["spanID"] for r in refs if r["refType"] == "CHILD_OF"],
                "links": [r["spanID"] for r in refs if r["refType"] == "FOLLOWS_FROM"],
            }
        )
    return out


def _wait_trace(jaeger: Jaeger, trace_id: str, count: int) -> list[dict[str, Any]]:
    def complete() -> list[dict[str, Any]] | None:
        trace = jaeger.trace(trace_id)
        spans = _spans(trace) if trace else []
        return spans if len(spans) >= count else None

    spans: list[dict[str, Any]] = wait_until(complete, 60, f"{count} spans in Jaeger", every=0.3)
    return spans


def _one(spans: list[dict[str, Any]], name: str, **tags: Any) -> dict[str, Any]:
    found = [s for s in spans if s["name"] == name and tags.items() <= s["tags"].items()]
    assert len(found) == 1, f"{name} {tags}: {[(s['name'], s['tags']) for s in spans]}"
    return found[0]


def _orders_router(
    topic: str, invoices: str, tracing: Tracing, fixed: threading.Event, attempts: int = 3
) -> Router:
    router = Router(
        topics=[topic],
        middleware=[tracing],
        publish_topics={"invoice.requested": invoices},
    )

    @router.handler(
        "order.created", retry=RetryPolicy(max_attempts=attempts, backoff=FixedBackoff(0.5))
    )
    async def on_order(data: dict[str, Any], ctx: Context) -> None:
        if ctx.attempt < 3 and not fixed.is_set():
            raise ConnectionError(f"payments down (attempt {ctx.attempt})")
        await ctx.publish("invoice.requested", {"order_id": data["order_id"]}, key="o1")

    return router


@pytest.mark.timeout(180)
def test_request_retries_and_follow_up_event_are_one_trace_in_jaeger(
    kafka_bootstrap: str,
    jaeger: Jaeger,
    providers: dict[str, TracerProvider],
    make_topic: Any,
    unique: str,
    tmp_path: Path,
) -> None:
    orders, invoices = make_topic("orders", partitions=1), make_topic("invoices", partitions=1)
    group, billing = f"orders-{unique}", f"billing-{unique}"
    router = _orders_router(orders, invoices, Tracing(providers["orders"]), threading.Event())
    ensure_failure_topics(kafka_bootstrap, router, orders, group)
    ensure_failure_topics(kafka_bootstrap, invoices_router, invoices, billing)
    service = Service(
        "tests.integration.services.traced",
        bootstrap=kafka_bootstrap,
        group=billing,
        topics=[invoices],
        out=tmp_path / "invoices",
        env={
            "STREAMKIT_TRACING": "otlp",
            "OTEL_SERVICE_NAME": f"invoices-{unique}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s, not the default 5 s
        },
    )
    service.wait_ready()
    with RunningWorker(router, settings(kafka_bootstrap, group, [orders])):
        trace_id = _post_order(kafka_bootstrap, orders, providers["http"])
        spans = _wait_trace(jaeger, trace_id, 9)
    assert service.stop() == 0

    assert {s["trace"] for s in spans} == {trace_id}
    assert len(jaeger.traces(f"orders-{unique}")) == 1  # nothing of it in another trace
    tier1, tier2 = (router.topic_names.retry(orders, group, n) for n in (1, 2))
    http = _one(spans, "POST /orders")
    sent = _one(spans, f"send {orders}")
    attempts = [
        _one(spans, f"process {topic}", **{"streamkit.attempt": n})
        for n, topic in ((1, orders), (2, tier1), (3, tier2))
    ]
    retries = [_one(spans, f"send {tier1}"), _one(spans, f"send {tier2}")]
    follow_up = _one(spans, f"send {invoices}")
    handled = _one(spans, f"process {invoices}")
    assert len(spans) == 9
    assert (http["service"], attempts[0]["service"], handled["service"]) == (
        f"http-{unique}",
        f"orders-{unique}",
        f"invoices-{unique}",
    )
    # request -> send -> attempt 1 -> retry send -> attempt 2 -> ... -> invoices handled
    chain = [http, sent, attempts[0], retries[0], attempts[1], retries[1], attempts[2]]
    for parent, child in itertools.pairwise(chain):
        assert child["parents"] == [parent["id"]], child["name"]
    assert follow_up["parents"] == [attempts[2]["id"]]
    assert handled["parents"] == [follow_up["id"]]
    # Each later attempt links the attempt that failed (a FOLLOWS_FROM in Jaeger).
    assert attempts[0]["links"] == [] and handled["links"] == []
    assert attempts[1]["links"] == [attempts[0]["id"]]
    assert attempts[2]["links"] == [attempts[1]["id"]]
    assert [a["tags"].get("error.type") for a in attempts] == [
        "ConnectionError",
        "ConnectionError",
        None,
    ]
    assert attempts[0]["tags"]["otel.status_code"] == "ERROR"
    assert (
        attempts[2]["tags"].items()
        >= {
            "messaging.system": "kafka",
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": tier2,
            "messaging.destination.partition.id": "0",
            "messaging.consumer.group.name": group,
            "messaging.kafka.message.key": "o1",
            "messaging.kafka.offset": 0,
            "span.kind": "consumer",
        }.items()
    )
    assert retries[0]["tags"]["streamkit.record.kind"] == "retry"
    assert handled["tags"]["messaging.consumer.group.name"] == billing
    # The invoices service's own log line carries the trace (JSON logs of `streamkit run`).
    logged = [orjson.loads(line) for line in service.log.read_text().splitlines() if "{" in line]
    [line] = [entry for entry in logged if entry.get("event") == "invoice requested"]
    assert (line["trace_id"], line["span_id"]) == (trace_id, handled["id"])


@pytest.mark.timeout(180)
def test_dead_lettered_then_replayed_event_stays_one_trace(
    kafka_bootstrap: str,
    jaeger: Jaeger,
    providers: dict[str, TracerProvider],
    make_topic: Any,
    unique: str,
) -> None:
    orders, invoices = make_topic("orders", partitions=1), make_topic("invoices", partitions=1)
    group = f"orders-{unique}"
    fixed = threading.Event()
    router = _orders_router(orders, invoices, Tracing(providers["orders"]), fixed, attempts=2)
    ensure_failure_topics(kafka_bootstrap, router, orders, group)
    dlq, tier1 = router.topic_names.dlq(orders, group), router.topic_names.retry(orders, group, 1)
    with RunningWorker(router, settings(kafka_bootstrap, group, [orders])):
        trace_id = _post_order(kafka_bootstrap, orders, providers["http"])
        read_all(kafka_bootstrap, dlq, 1)  # exhausted: dead-lettered
        fixed.set()  # the bug is fixed; the operator replays
        replay = run_cli("replay", dlq, "-b", kafka_bootstrap)
        assert replay.exit_code == 0, replay.stderr
        spans = _wait_trace(jaeger, trace_id, 8)

    assert {s["trace"] for s in spans} == {trace_id}
    failed = [
        _one(spans, f"process {orders}"),
        _one(spans, f"process {tier1}", **{"error.type": "ConnectionError"}),
    ]
    dead = _one(spans, f"send {dlq}")
    [replayed] = [
        s for s in spans if s["name"] == f"process {tier1}" and "error.type" not in s["tags"]
    ]
    assert dead["parents"] == [failed[1]["id"]]
    assert dead["tags"]["streamkit.record.kind"] == "dlq"
    assert replayed["parents"] == [dead["id"]]  # the replay continues from the dead letter
    assert replayed["links"] == [failed[1]["id"]]
    _one(spans, f"send {invoices}")  # and the fixed handler's follow-up is in it too
    assert len(spans) == 8  # POST, send, 2 failed, retry send, DLQ send, replayed, follow-up


@pytest.mark.timeout(120)
def test_prometheus_stores_trace_id_exemplars_that_jaeger_knows(
    kafka_bootstrap: str, jaeger: Jaeger, make_topic: Any, unique: str, tmp_path: Path
) -> None:
    prometheus_binary()  # skips (locally) before a service is started and left running
    invoices, billing = make_topic("invoices", partitions=1), f"billing-{unique}"
    ensure_failure_topics(kafka_bootstrap, invoices_router, invoices, billing)
    service = Service(
        "tests.integration.services.traced",
        bootstrap=kafka_bootstrap,
        group=billing,
        topics=[invoices],
        out=tmp_path / "invoices",
        env={
            "STREAMKIT_TRACING": "otlp",
            "OTEL_SERVICE_NAME": f"invoices-{unique}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            # These events carry no trace context: trace each (the default samples 1 %).
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        },
    )
    service.wait_ready()
    events = [("invoice.requested", {"order_id": f"o{i}"}, f"o{i}") for i in range(20)]
    started = time.time()
    produce_events(kafka_bootstrap, invoices, events)
    targets = [f"127.0.0.1:{service.port}"]
    with PrometheusServer(tmp_path / "prom", targets, [], features=("exemplar-storage",)) as prom:
        prom.wait_ready()

        def exemplar_ids() -> set[str]:
            answer = prom.api(
                "query_exemplars",
                query="streamkit_handler_duration_seconds_bucket",
                start=str(started - 60),
                end=str(time.time() + 60),
            )
            assert answer["status"] == "success", answer
            return {
                e["labels"]["trace_id"]
                for series in answer["data"]
                for e in series["exemplars"]
                if "trace_id" in e["labels"]
            }

        ids = wait_until(exemplar_ids, 30, "trace-id exemplars in Prometheus", every=0.5)
    for trace_id in ids:
        trace = wait_until(lambda t=trace_id: jaeger.trace(t), 30, f"trace {trace_id} in Jaeger")
        names = [s["operationName"] for s in trace["spans"]]
        assert names == [f"process {invoices}"], names
    assert service.stop() == 0
