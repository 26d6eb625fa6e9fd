"""``streamkit run MODULE``."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import click
import structlog

from streamkit.admin import check_partitions, check_topics, connect
from streamkit.cli.common import friendly_errors, kafka_options, settings_overrides
from streamkit.config import Settings
from streamkit.consumer.runtime import Worker
from streamkit.handlers.registry import Router
from streamkit.loader import load_router
from streamkit.observability.http import HealthState, serve_http
from streamkit.observability.logging import configure_logging
from streamkit.observability.metrics import Metrics
from streamkit.preflight import check_access, worker_access

log = structlog.get_logger("streamkit.cli")


@click.command()
@click.argument("module")
@click.option(
    "--topic",
    "-t",
    "topics",
    multiple=True,
    help="Topic to consume (repeatable) "
    "[env STREAMKIT_TOPICS, comma-separated; default: the router's topics].",
)
@click.option("--group", "-g", help="Consumer group id [env STREAMKIT_GROUP_ID].")
@kafka_options
@click.option(
    "--metrics-port",
    type=int,
    help="Port for /metrics, /healthz, /readyz; "
    "0 disables [env STREAMKIT_METRICS_PORT; default 9400].",
)
@click.option(
    "--shutdown-timeout",
    type=float,
    help="Seconds to finish in-flight events on SIGTERM [default 30].",
)
@click.option("--max-inflight", type=int, help="Concurrent events per process [default 1000].")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    help="auto: JSON unless stderr is a terminal.",
)
@click.option("--log-level", help="DEBUG, INFO, WARNING, ERROR [default INFO].")
@friendly_errors
def run(
    module: str,
    topics: tuple[str, ...],
    group: str | None,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
    **options: Any,
) -> None:
    """Run the handlers of MODULE (``package.module`` or ``package.module:router``).

    Consumes the topics and their retry tiers as one member of the consumer group;
    start more processes with the same group to scale out. SIGTERM or Ctrl-C drains
    in-flight events, commits and leaves the group; a second signal exits at once.
    """
    overrides = settings_overrides(bootstrap_servers, kafka)
    overrides.update({k: v for k, v in options.items() if v is not None})
    if topics:
        overrides["topics"] = list(topics)
    if group:
        overrides["group_id"] = group
    settings = Settings(**overrides)
    configure_logging(settings.log_format, settings.log_level)
    router = load_router(module)
    _enable_tracing(router)
    worker = Worker(router, settings, metrics=Metrics(), health=HealthState(settings.stall_after))
    _preflight(worker)
    server = None
    if settings.metrics_port:
        server = serve_http(settings.metrics_port, worker.metrics.registry, worker.health)
    try:
        asyncio.run(_serve(worker))
    finally:
        if server is not None:
            server.close()


def _enable_tracing(router: Router) -> None:
    """``STREAMKIT_TRACING=otlp``: trace every handler (needs the ``streamkit[otel]`` extra)."""
    if os.environ.get("STREAMKIT_TRACING", "off").strip().lower() not in ("", "off", "none"):
        from streamkit.observability.tracing import middleware_from_env

        router.middleware.extend(middleware_from_env())


def _preflight(worker: Worker) -> None:
    """Fail fast, with one line, when the broker, a permission or a needed topic is missing."""
    s = worker.settings
    admin, metadata = connect(s.client_settings(), s.connect_timeout)
    if s.check_access:  # first: a topic we may not describe looks missing
        check_access(admin, worker_access(worker), s.client_settings(), s.connect_timeout)
    if s.check_topics:
        check_topics(metadata, worker.required_topics())
        check_partitions(metadata, worker.derived_topics())


async def _serve(worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    signals = {"count": 0}

    def on_signal(signum: int) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            log.warning("second signal: exiting at once", signal=signal.Signals(signum).name)
            os._exit(130)
        log.info("signal received: draining", signal=signal.Signals(signum).name)
        worker.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    await worker.run()
