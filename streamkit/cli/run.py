"""``streamkit run MODULE``."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
from typing import Any

import click
import structlog

from streamkit.admin import check_partitions, check_topics, connect
from streamkit.cli.common import friendly_errors, kafka_options, settings_overrides
from streamkit.cli.run_options import LOG_LEVELS, env_default, settings_flags
from streamkit.config import Settings
from streamkit.consumer.runtime import Worker
from streamkit.errors import ConfigError
from streamkit.handlers.registry import Router
from streamkit.loader import load_router
from streamkit.observability.http import HealthState, HttpServerHandle, serve_http
from streamkit.observability.logging import configure_logging
from streamkit.observability.metrics import Metrics
from streamkit.preflight import check_access, worker_access
from streamkit.reachability import broker_wait

log = structlog.get_logger("streamkit.cli")


_EPILOG = """\b
Tracing (environment only, needs the streamkit[otel] extra):
  STREAMKIT_TRACING=otlp          spans over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT
  OTEL_TRACES_SAMPLER(_ARG)       default: parent-based, 1 % of new traces
  STREAMKIT_TRACING_LINK_MODE     parent (default) or link
"""


@click.command(epilog=_EPILOG)
@click.argument("module")
@click.option(
    "--topic",
    "-t",
    "topics",
    multiple=True,
    help="Topic to consume (repeatable) "
    + env_default("topics", "the router's topics", note="comma-separated"),
)
@click.option("--group", "-g", help="Consumer group id (required) " + env_default("group_id", ""))
@kafka_options
@settings_flags
@friendly_errors
def run(
    module: str,
    topics: tuple[str, ...],
    group: str | None,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
    **options: Any,
) -> None:
    """Run the handlers of MODULE (package.module, or package.module:router).

    Consumes the topics and their retry tiers as one member of the consumer group;
    start more processes with the same group to scale out. SIGTERM or Ctrl-C drains
    in-flight events, commits and leaves the group; a second signal exits at once.
    Every flag can also be set as an environment variable, as shown.
    """
    overrides = settings_overrides(bootstrap_servers, kafka)
    overrides.update({k: v for k, v in options.items() if v is not None})
    if topics:
        overrides["topics"] = list(topics)
    if group:
        overrides["group_id"] = group
    settings = Settings(**overrides)
    configure_logging(settings.log_format, _log_level(settings.log_level))
    router = load_router(module)
    _enable_tracing(router)
    health = _AnnouncingHealth(settings.stall_after)
    worker = Worker(router, settings, metrics=Metrics(), health=health)
    _preflight(worker)
    server = _serve_metrics(worker)
    _announce(worker)
    try:
        asyncio.run(_serve(worker))
    finally:
        if server is not None:
            server.close()
    if worker.stuck:
        # A client call outlived its shutdown bound (broker down) and still runs in a
        # daemon thread: interpreter teardown under it can abort. Everything that could
        # be committed was; leave at once.
        logging.shutdown()
        os._exit(0)


def _log_level(level: str) -> str:
    """The level in upper case, or one line naming the valid ones (not a ValueError)."""
    upper = level.strip().upper()
    if upper not in LOG_LEVELS:
        raise ConfigError(
            f"invalid log level {level!r} (--log-level / STREAMKIT_LOG_LEVEL): "
            f"use one of {', '.join(LOG_LEVELS)}"
        )
    return upper


def _enable_tracing(router: Router) -> None:
    """``STREAMKIT_TRACING=otlp``: trace every handler (needs the ``streamkit[otel]`` extra)."""
    if os.environ.get("STREAMKIT_TRACING", "off").strip().lower() not in ("", "off", "none"):
        from streamkit.observability.tracing import middleware_from_env

        router.middleware.extend(middleware_from_env())


def _preflight(worker: Worker) -> None:
    """Fail fast, with one line, when the broker, a permission or a needed topic is missing."""
    s = worker.settings
    admin, metadata = _connect(s)
    if s.check_access:  # first: a topic we may not describe looks missing
        check_access(admin, worker_access(worker), s.client_settings(), s.connect_timeout)
    if s.check_topics:
        check_topics(metadata, worker.required_topics())
        check_partitions(metadata, worker.derived_topics())


def _connect(s: Settings) -> tuple[Any, Any]:
    """Say where at once, then fail within seconds when no bootstrap server accepts
    connections (unless STREAMKIT_CONNECT_TIMEOUT asks to wait for one)."""
    log.info("connecting", bootstrap_servers=s.client_settings()["bootstrap.servers"])
    return connect(s.client_settings(), s.connect_timeout, wait=broker_wait(s))


def _serve_metrics(worker: Worker) -> HttpServerHandle | None:
    """Start /metrics /healthz /readyz; a port in use is one line, not a traceback."""
    s = worker.settings
    if not s.metrics_port:
        return None
    try:
        return serve_http(s.metrics_port, worker.metrics.registry, worker.health, s.metrics_host)
    except OSError as exc:
        where = f"{s.metrics_host}:{s.metrics_port}"
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"metrics port {where} is in use (another streamkit run on this host?): "
                "pass --metrics-port N (or STREAMKIT_METRICS_PORT), 0 to disable"
            ) from None
        raise ConfigError(f"cannot serve metrics on {where}: {exc.strerror or exc}") from None


def _announce(worker: Worker) -> None:
    """What this process will do, in two lines: before the group hands out partitions."""
    s = worker.settings
    metrics = f"http://{s.metrics_host}:{s.metrics_port}/metrics" if s.metrics_port else "off"
    log.info(
        "service",
        event_types=sorted(spec.event_type for spec in worker.router.handlers()),
        topics=worker.sources,
        retry_and_dlq_topics=list(worker.derived_topics()),
        group=worker.group,
        metrics=metrics,
    )
    log.info("waiting for partition assignment", group=worker.group)


class _AnnouncingHealth(HealthState):
    """Logs the first time the group assigned partitions (the end of "waiting")."""

    _announced = False

    def set_ready(self, ready: bool, reason: str | None = None) -> None:
        """Mark ready or not; the first ready is logged once."""
        if ready and not self._announced:
            self._announced = True
            logging.getLogger("streamkit.cli").info("partitions assigned: ready")
        super().set_ready(ready, reason)


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
