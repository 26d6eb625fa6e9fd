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
from streamkit import Router, Settings, Worker
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
    router = Router(topics=[spec["topic"]], publish_topics=spec.get("publish_topics", {}))
    holder: dict[str, Worker] = {}
    make = HANDLERS[spec["mode"]]
    fn, options = make(spec, rec, lambda: holder["worker"].stop())
    router.add("order.created", fn, **options)
    if os.environ.get("STREAMKIT_TRACING", "off") != "off":  # tracing overhead runs
        from streamkit.observability.tracing import middleware_from_env

        router.middleware.extend(middleware_from_env())
    settings = Settings(
        bootstrap_servers=spec["bootstrap"],
        group_id=spec["group"],
        **spec.get("settings", {}),
    )
    worker = holder["worker"] = Worker(router, settings)
    return worker


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
