"""Logging setup for the CLI. The library itself never configures logging.

JSON lines when stderr is not a terminal (production, containers) or when asked; readable,
coloured console lines on a terminal.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

from streamkit.handlers.context import Context
from streamkit.handlers.middleware import Middleware


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "INFO"
) -> None:
    """Route structlog and stdlib logging to stderr in ``fmt`` at ``level``."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        _trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info if use_json else _identity,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        # filter_by_level first: a disabled DEBUG line costs a level check, not a render.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _trace_ids(
    logger: object, name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """``trace_id``/``span_id`` of the current span, once tracing is loaded.

    Looks the module up instead of importing it: without tracing (or the otel extra) a
    log line pays one dict lookup, and OpenTelemetry is never imported.
    """
    tracing = sys.modules.get("streamkit.observability.tracing")
    if tracing is None:
        return event_dict
    with_ids: structlog.typing.EventDict = tracing.add_trace_ids(logger, name, event_dict)
    return with_ids


def _identity(
    logger: object, name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    return event_dict


_FIELDS = ("topic", "partition", "offset", "event_type", "event_id")


class LogContext(Middleware):
    """Binds topic, partition, offset, event_type and event_id to every log line a handler
    writes with structlog (``structlog.contextvars``).

    Opt in with ``Router(middleware=[LogContext()])``: it costs a few microseconds per event,
    which matters only for trivial handlers at very high rates.
    """

    def before_handle(self, ctx: Context) -> None:
        """Bind the event's coordinates for the handler's own log lines."""
        structlog.contextvars.bind_contextvars(
            topic=ctx.topic,
            partition=ctx.partition,
            offset=ctx.offset,
            event_type=ctx.event_type,
            event_id=ctx.event_id,
        )

    def after_handle(self, ctx: Context, error: BaseException | None, duration: float) -> None:
        """Unbind them again (sync handlers share the loop's context)."""
        structlog.contextvars.unbind_contextvars(*_FIELDS)
