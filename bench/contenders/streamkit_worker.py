"""streamkit: an in-process :class:`streamkit.Worker` (what ``streamkit run`` runs).

Logging is configured as ``streamkit run`` does in a container (JSON to stderr, INFO),
so per-event log lines, if any, are paid for as in production.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from bench.contenders.common import Recorder, touch
from bench.contenders.streamkit_handlers import HANDLERS
from streamkit import Middleware, Router, Settings, Worker
from streamkit.observability.logging import configure_logging


def run(spec: dict[str, Any]) -> dict[str, Any]:
    configure_logging("json", spec.get("log_level", "INFO"))
    rec = Recorder(spec)
    if spec.get("profile"):
        return _profiled(spec, rec)
    asyncio.run(_main(spec, rec))
    return rec.result(spec)


def _profiled(spec: dict[str, Any], rec: Recorder) -> dict[str, Any]:
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    asyncio.run(_main(spec, rec))
    prof.disable()
    prof.dump_stats(spec["profile"])
    return rec.result(spec)


def build_worker(spec: dict[str, Any], rec: Recorder) -> Worker:
    router = Router(
        topics=[spec["topic"]], publish_topics=spec.get("publish_topics", {}), **_codec(spec)
    )
    holder: dict[str, Worker] = {}
    make = HANDLERS[spec["mode"]]
    fn, options = make(spec, rec, lambda: holder["worker"].stop())
    router.add("order.created", fn, **options)
    types = int(spec.get("types", 1))
    for n in range(types if types > 1 else 0):  # scenario 9's many event types
        router.add(f"order.created.{n}", fn, **options)
    router.middleware.extend(_bench_middleware())
    if spec.get("dedupe"):
        router.middleware.append(_dedupe(spec))
    settings = Settings(
        bootstrap_servers=spec["bootstrap"],
        group_id=spec["group"],
        **spec.get("settings", {}),
    )
    worker = holder["worker"] = Worker(router, settings)
    return worker


def _bench_middleware() -> list[Middleware]:
    """Scenario 12's variants: tracing as ``streamkit run`` sets it up, the SDK with an
    exporter that drops every span (the SDK's own cost), or a hooks-only middleware."""
    if os.environ.get("BENCH_NOOP_MIDDLEWARE"):
        return [Middleware()]
    if os.environ.get("BENCH_TRACING_DROP"):
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
        from opentelemetry.sdk.trace.export import SpanExportResult as Result

        from streamkit.observability.tracing import Tracing

        class Drop(SpanExporter):
            def export(self, spans: object) -> Result:
                return Result.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop()))
        return [Tracing(provider)]
    if os.environ.get("STREAMKIT_TRACING", "off") != "off":
        from streamkit.observability.tracing import middleware_from_env

        return middleware_from_env()
    return []


def _dedupe(spec: dict[str, Any]) -> Any:
    """The idempotency scenario's middleware: an in-memory window or the PostgreSQL inbox."""
    from streamkit.idempotency import Dedupe, MemoryStore

    if spec["dedupe"] == "memory":
        return Dedupe(MemoryStore())
    if spec["dedupe"] == "noop":  # the middleware scope's own cost, for comparison
        from streamkit.handlers.middleware import CallNext, Middleware

        class PassThrough(Middleware):
            async def handle(self, ctx: Any, call_next: CallNext) -> None:
                await call_next()

        return PassThrough()
    from streamkit.idempotency.postgres import PostgresInbox

    return Dedupe(
        PostgresInbox(spec["dsn"], table=spec["inbox_table"], max_size=int(spec.get("pool", 10)))
    )


def _codec(spec: dict[str, Any]) -> dict[str, Any]:
    """Scenario 10: a schema-registry codec (``spec["codec"]`` = avro | json-schema)."""
    fmt = spec.get("codec")
    if fmt is None:
        return {}
    from bench.workload import EVENT_TYPE, Order

    if fmt == "avro":
        from streamkit.codecs.avro import AvroCodec as Codec
    else:
        from streamkit.codecs.jsonschema import JsonSchemaCodec as Codec
    return {"codec": Codec(spec["registry"], models={EVENT_TYPE: Order})}


async def _main(spec: dict[str, Any], rec: Recorder) -> None:
    worker = build_worker(spec, rec)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, worker.stop)
    helpers = [asyncio.create_task(_signal_ready(worker, spec))]
    if spec.get("progress"):
        helpers.append(asyncio.create_task(_report_progress(rec, spec["progress"])))
    if spec.get("duration_s"):
        helpers.append(asyncio.create_task(_stop_after(worker, rec, spec["duration_s"])))
    try:
        await worker.run()
    finally:
        for task in helpers:
            task.cancel()
    touch(spec.get("progress"), str(rec.n))


async def _signal_ready(worker: Worker, spec: dict[str, Any]) -> None:
    while not getattr(worker, "states", None):
        await asyncio.sleep(0.02)
    touch(spec.get("ready"), "ready")


async def _report_progress(rec: Recorder, path: str) -> None:
    while True:
        touch(path, str(rec.n))
        await asyncio.sleep(0.2)


async def _stop_after(worker: Worker, rec: Recorder, seconds: float) -> None:
    while not rec.n:
        await asyncio.sleep(0.01)
    await asyncio.sleep(seconds)
    rec.mark_end()
    worker.stop()
