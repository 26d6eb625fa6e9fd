"""Tracing middleware on the in-memory broker, spans caught by the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from streamkit import envelope as env
from streamkit.errors import ConfigError
from streamkit.observability.tracing import (
    DEFAULT_ROOT_RATIO,
    H_FAILED_TRACEPARENT,
    Tracing,
    add_trace_ids,
    default_sampler,
    middleware_from_env,
    traced_headers,
)
from streamkit.ops.replay import replay_headers
from streamkit.testing import TestBroker

SOURCE = "orders"


def _sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body on its own loop (the suite has no async plugin)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "unit"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _router(provider: TracerProvider, **kw: Any) -> Router:
    return Router(
        topics=[SOURCE],
        middleware=[Tracing(provider, **kw)],
        publish_topics={"invoice.requested": "invoices"},
        retry=RetryPolicy(max_attempts=3, backoff=FixedBackoff(0)),
    )


async def _send_traced(broker: TestBroker, provider: TracerProvider, tracing: Tracing) -> int:
    """Publish ``order.created`` under an HTTP span, as a web service would; its trace id."""
    tracer = provider.get_tracer("http")
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as http:
        headers = traced_headers(
            SOURCE, [(env.HEADER_EVENT_TYPE, b"order.created")], tracing=tracing
        )
    value = env.encode_envelope("order.created", {"order_id": "o1"}, event_id="e1")
    broker.append(SOURCE, value, key="o1", headers=headers)
    await broker.run()
    return http.get_span_context().trace_id


def _named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def _traceparent(trace_id: int, span_id: int | None) -> str:
    """The traceparent header naming a span (the SDK sets the "random trace id" flag too)."""
    return f"00-{trace_id:032x}-{span_id:016x}-03"


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@_sync
async def test_process_and_send_spans_follow_the_conventions_in_one_trace(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    router = _router(provider)
    seen: dict[str, Any] = {}

    @router.handler("order.created")
    async def on_order(data: dict[str, Any], ctx: Context) -> None:
        seen["logs"] = add_trace_ids(None, "info", {})  # what a log line gets
        seen["span"] = trace.get_current_span().get_span_context()
        await ctx.publish("invoice.requested", {"order_id": data["order_id"]}, key="o1")

    async with TestBroker(router, group="billing") as broker:
        trace_id = await _send_traced(broker, provider, router.middleware[0])  # type: ignore[arg-type]
        [out] = broker.topics["invoices"]
    [http] = _named(exporter, "POST /orders")
    [produce] = _named(exporter, f"send {SOURCE}")
    [process] = _named(exporter, f"process {SOURCE}")
    [publish] = _named(exporter, "send invoices")
    assert {s.context.trace_id for s in (http, produce, process, publish)} == {trace_id}  # type: ignore[union-attr]
    assert (_parent(produce), _parent(process), _parent(publish)) == (
        _id(http),
        _id(produce),
        _id(process),
    )
    assert process.links == ()  # the producer's span is the parent, not also a link
    assert process.kind is SpanKind.CONSUMER and publish.kind is SpanKind.PRODUCER
    assert dict(process.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": SOURCE,
        "messaging.destination.partition.id": "0",
        "messaging.consumer.group.name": "billing",
        "messaging.kafka.offset": 0,
        "messaging.kafka.message.key": "o1",
        "messaging.message.id": "e1",
        "streamkit.event_type": "order.created",
        "streamkit.attempt": 1,
    }
    assert publish.attributes is not None
    assert publish.attributes["messaging.operation.type"] == "send"
    assert publish.attributes["streamkit.record.kind"] == "event"
    assert process.status.status_code is StatusCode.UNSET
    # The follow-up record carries the send span; the handler saw its span and log ids.
    assert out.header("traceparent") == _traceparent(trace_id, _id(publish))
    assert out.header(H_FAILED_TRACEPARENT) is None
    assert seen["span"].span_id == _id(process)
    assert seen["logs"]["trace_id"] == f"{trace_id:032x}"
    assert seen["logs"]["span_id"] == f"{_id(process):016x}"
    assert add_trace_ids(None, "info", {}) == {}  # no span current outside the handler


@_sync
async def test_retried_attempts_are_one_trace_each_linked_to_the_failed_one(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    router = _router(provider)

    @router.handler("order.created")
    def on_order(data: dict[str, Any], ctx: Context) -> None:
        if ctx.attempt < 3:
            raise ConnectionError(f"downstream down (attempt {ctx.attempt})")

    async with TestBroker(router, group="billing") as broker:
        trace_id = await _send_traced(broker, provider, router.middleware[0])  # type: ignore[arg-type]
    process = sorted(
        (s for s in exporter.get_finished_spans() if s.name.startswith("process ")),
        key=lambda s: (s.attributes or {})["streamkit.attempt"],  # type: ignore[arg-type,return-value]
    )
    assert [(s.attributes or {})["streamkit.attempt"] for s in process] == [1, 2, 3]
    assert {s.context.trace_id for s in process} == {trace_id}  # type: ignore[union-attr]
    assert [(s.attributes or {}).get("error.type") for s in process] == [
        "ConnectionError",
        "ConnectionError",
        None,
    ]
    assert process[0].status.status_code is StatusCode.ERROR
    assert process[0].status.description == "ConnectionError: downstream down (attempt 1)"
    retry_sends = [
        s
        for s in exporter.get_finished_spans()
        if s.name.startswith("send ") and ".retry." in s.name
    ]
    assert len(retry_sends) == 2
    for failed, send, later in zip(process[:2], retry_sends, process[1:], strict=True):
        assert _parent(send) == _id(failed)  # the retry record is sent from the failed attempt
        assert _parent(later) == _id(send)
        assert [link.context.span_id for link in later.links] == [_id(failed)]
        assert (send.attributes or {})["streamkit.record.kind"] == "retry"


@_sync
async def test_a_dead_letter_keeps_the_trace_and_its_replay_continues_it(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    router = _router(provider)
    fixed = threading.Event()

    @router.handler("order.created")
    def on_order(data: dict[str, Any], ctx: Context) -> None:
        if not fixed.is_set():
            raise ValueError("bug")

    async with TestBroker(router, group="billing") as broker:
        trace_id = await _send_traced(broker, provider, router.middleware[0])  # type: ignore[arg-type]
        [dead] = broker.dead_letters
        [dlq_send] = [
            s
            for s in exporter.get_finished_spans()
            if s.name.startswith("send ") and s.name.endswith(".dlq")
        ]
        last_failed = _parent(dlq_send)
        assert dead.header("traceparent") == _traceparent(trace_id, _id(dlq_send))
        assert dead.header(H_FAILED_TRACEPARENT) == _traceparent(trace_id, last_failed)
        # What `streamkit replay` sends: failure headers stripped, trace headers kept.
        fixed.set()
        tier1 = router.topic_names.retry(SOURCE, "billing", 1)
        broker.append(
            tier1, dead.value(), key=dead.key(), headers=replay_headers(dead.headers(), "x", 0)
        )
        await broker.run()
    replayed = _named(exporter, f"process {tier1}")[-1]
    assert replayed.status.status_code is StatusCode.UNSET
    assert replayed.context.trace_id == trace_id  # type: ignore[union-attr]
    assert _parent(replayed) == _id(dlq_send)
    assert [link.context.span_id for link in replayed.links] == [last_failed]


@_sync
async def test_link_mode_starts_a_trace_per_event_linked_to_the_producer(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    router = _router(provider, link_mode="link")

    @router.handler("order.created")
    def on_order(data: dict[str, Any], ctx: Context) -> None:
        if ctx.attempt == 1:
            raise ConnectionError("once")

    async with TestBroker(router) as broker:
        trace_id = await _send_traced(broker, provider, router.middleware[0])  # type: ignore[arg-type]
    first, second = sorted(
        (s for s in exporter.get_finished_spans() if s.name.startswith("process ")),
        key=lambda s: s.start_time or 0,
    )
    [produce] = _named(exporter, f"send {SOURCE}")
    assert first.parent is None and first.context.trace_id != trace_id  # type: ignore[union-attr]
    assert [link.context.span_id for link in first.links] == [_id(produce)]
    assert second.context.trace_id == first.context.trace_id  # type: ignore[union-attr]


@_sync
async def test_sync_async_and_blocking_handlers_run_inside_their_span(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    router = _router(provider)
    inside: dict[str, int] = {}

    def record(name: str) -> None:
        inside[name] = trace.get_current_span().get_span_context().span_id

    @router.handler("sync")
    def on_sync(data: dict[str, Any]) -> None:
        record("sync")

    @router.handler("async")
    async def on_async(data: dict[str, Any]) -> None:
        record("async")

    @router.handler("blocking", blocking=True)
    def on_blocking(data: dict[str, Any]) -> None:
        record("blocking")

    async with TestBroker(router) as broker:
        for event_type in ("sync", "async", "blocking"):
            await broker.publish(event_type, {}, key=event_type)
    by_type = {
        (s.attributes or {})["streamkit.event_type"]: _id(s) for s in exporter.get_finished_spans()
    }
    assert inside == by_type
    assert all(s.parent is None for s in exporter.get_finished_spans())  # untraced producer


@_sync
async def test_bad_input_dead_letter_stays_in_the_producers_trace(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    router = _router(provider)
    async with TestBroker(router) as broker:
        tracer = provider.get_tracer("http")
        with tracer.start_as_current_span("POST /orders") as http:
            headers = traced_headers(
                SOURCE, [(env.HEADER_EVENT_TYPE, b"nobody")], tracing=Tracing(provider)
            )
        await broker.send_raw(b"not json", headers=headers)
        [dead] = broker.dead_letters
    [dlq_send] = [
        s
        for s in exporter.get_finished_spans()
        if s.name.startswith("send ") and s.name.endswith(".dlq")
    ]
    assert dlq_send.context.trace_id == http.get_span_context().trace_id  # type: ignore[union-attr]
    assert dead.header(H_FAILED_TRACEPARENT) is None


@_sync
async def test_the_default_sampler_follows_a_sampled_producer_and_samples_few_new_traces() -> None:
    sampler = default_sampler({})
    assert sampler is not None and DEFAULT_ROOT_RATIO == 0.01
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    http = TracerProvider()  # the web service upstream samples everything it traces
    tracing = Tracing(provider)
    router = _router(provider)

    @router.handler("order.created")
    def on_order(data: dict[str, Any]) -> None:
        pass

    async with TestBroker(router) as broker:
        traced = await _send_traced(broker, http, tracing)  # the producer's trace: followed
        for n in range(400):  # no trace context: 1 % start a trace
            value = env.encode_envelope("order.created", {"order_id": f"o{n}"})
            broker.append(SOURCE, value, key=f"o{n}")
        await broker.run()
    processed = _named(exporter, f"process {SOURCE}")
    assert [s for s in processed if s.context and s.context.trace_id == traced]
    assert len(processed) < 1 + 40  # 4 expected of 400; always-on would record 401
    provider.shutdown()


def test_otel_traces_sampler_overrides_the_default_sampler() -> None:
    assert default_sampler({"OTEL_TRACES_SAMPLER": "parentbased_always_on"}) is None


def test_from_env_is_off_by_default_and_rejects_unknown_values() -> None:
    assert middleware_from_env({}) == []
    assert middleware_from_env({"STREAMKIT_TRACING": "off"}) == []
    with pytest.raises(ConfigError, match="expected 'otlp' or 'off'"):
        middleware_from_env({"STREAMKIT_TRACING": "jaeger"})
    with pytest.raises(ConfigError, match="expected 'parent' or 'link'"):
        middleware_from_env({"STREAMKIT_TRACING": "otlp", "STREAMKIT_TRACING_LINK_MODE": "x"})


def test_without_the_extra_streamkit_imports_no_opentelemetry_and_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"  # as if not installed
        "import streamkit, streamkit.testing, streamkit.cli.main\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry.')], 'imported'\n"
        "try:\n"
        "    import streamkit.observability.tracing\n"
        "except streamkit.ConfigError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "tracing needs the OpenTelemetry packages: pip install 'streamkit[otel]'"
    )


def test_a_traced_duration_is_an_exemplar_of_its_bucket_and_every_call_is_counted() -> None:
    from prometheus_client.openmetrics.exposition import generate_latest

    from streamkit.observability.metrics import Metrics
    from streamkit.observability.stats import EXEMPLAR_TRACE_ID, BatchStats

    metrics = Metrics()
    stats = BatchStats(metrics, "g")
    stats.duration("plain", 0.003)  # no trace: no exemplar
    for trace_id, seconds in (("a" * 32, 0.002), ("b" * 32, 0.0021), ("c" * 32, 2.0)):
        token = EXEMPLAR_TRACE_ID.set(trace_id)
        stats.duration("traced", seconds)
        EXEMPLAR_TRACE_ID.reset(token)
    stats.flush()
    text = generate_latest(metrics.registry).decode()
    exemplars = [line for line in text.splitlines() if "# {" in line]
    assert len(exemplars) == 2, exemplars  # one per bucket: the latest of 0.002/0.0021, 2.0
    assert any('trace_id="' + "b" * 32 in line and 'le="0.0025"' in line for line in exemplars)
    assert any('trace_id="' + "c" * 32 in line for line in exemplars)
    assert 'streamkit_handler_duration_seconds_count{event_type="traced"} 3.0' in text
    assert 'streamkit_handler_duration_seconds_count{event_type="plain"} 1.0' in text


def test_the_dashboard_shows_exemplars_and_grafana_links_their_trace_id() -> None:
    import json
    from pathlib import Path

    import yaml

    deploy = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
    dashboard = json.loads((deploy / "dashboards" / "streamkit.json").read_text())
    with_exemplars = [
        panel["title"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target.get("exemplar") and "streamkit_handler_duration_seconds" in target["expr"]
    ]
    assert with_exemplars == ["Handler p99 by event type"]
    sources = yaml.safe_load(
        (deploy / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    [destination] = sources["datasources"][0]["jsonData"]["exemplarTraceIdDestinations"]
    assert destination["name"] == "trace_id"  # the exemplar label BatchStats writes
    assert "${__value.raw}" in destination["url"]
