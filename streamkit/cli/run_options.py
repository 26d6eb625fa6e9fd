"""The flags of ``streamkit run``: one per setting, help generated from :class:`Settings`.

Each flag's help ends in ``[env: STREAMKIT_<NAME>; default: <value>]`` taken from the
settings model itself, so the defaults printed can never drift from the ones applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from streamkit.cli.common import parse_pairs
from streamkit.config import Settings

F = TypeVar("F", bound=Callable[..., Any])
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# (flag, settings field, click type, what it does); the order is the order in --help.
SETTINGS_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--metrics-port", "metrics_port", click.IntRange(0, 65535),
     "Port for /metrics, /healthz, /readyz; 0 disables."),
    ("--metrics-host", "metrics_host", str,
     "Address /metrics, /healthz, /readyz bind to; 127.0.0.1 keeps them on this host."),
    ("--shutdown-timeout", "shutdown_timeout", float,
     "Seconds to finish in-flight events on SIGTERM."),
    ("--max-inflight", "max_inflight", click.IntRange(min=1),
     "Events handled at once, per process."),
    ("--max-buffered", "max_buffered", click.IntRange(min=1),
     "Events held in memory before fetching pauses."),
    ("--batch-size", "batch_size", click.IntRange(1, 100_000), "Records per poll."),
    ("--commit-interval", "commit_interval", float, "Seconds between offset commits."),
    ("--connect-timeout", "connect_timeout", float,
     "Seconds to wait for the broker; when given, also waits for one that refuses "
     "connections (still starting) instead of failing at once."),
    ("--revoke-timeout", "revoke_timeout", float,
     "Seconds a rebalance waits for in-flight events of revoked partitions."),
    ("--stall-after", "stall_after", float,
     "Seconds without a poll before /healthz fails."),
    ("--blocking-threads", "blocking_threads", click.IntRange(min=1),
     "Threads for blocking=True handlers."),
    ("--default-publish-topic", "default_publish_topic", str,
     "Topic for ctx.publish of event types no --publish-topic names."),
    ("--log-format", "log_format", click.Choice(["auto", "json", "console"]),
     "auto: JSON unless stderr is a terminal."),
    ("--log-level", "log_level", str, f"One of {', '.join(LOG_LEVELS)} (any case)."),
    ("--on-unknown", "on_unknown", click.Choice(["dlq", "skip"]),
     "Event types no handler claims: dead-letter them, or skip them (counted); none: "
     "what the router says."),
    ("--guarantee", "guarantee", click.Choice(["at-least-once", "exactly-once"]),
     "exactly-once: outputs, retry/DLQ records and offsets in one Kafka transaction."),
    ("--transactional-id", "transactional_id", str,
     "exactly-once: the producer's transactional.id (a stable one per process, e.g. the "
     "pod name, lets a restart abort what it left open)."),
    ("--error-details", "error_details", click.Choice(["safe", "full"]),
     "safe: a ValidationError from a handler is logged and dead-lettered without input "
     "values; full: its whole text."),
    ("--instance-id", "instance_id", str,
     "Static group membership (group.instance.id), unique per process, e.g. the pod name: "
     "a restart within the session timeout gets its partitions back without a rebalance."),
    ("--group-protocol", "group_protocol", click.Choice(["classic", "consumer"]),
     "classic: client-side range assignor, eager rebalances; consumer: KIP-848, the broker "
     "assigns incrementally (group.remote.assignor, default range)."),
]  # fmt: skip


def env_default(field: str, default: str | None = None, *, note: str = "") -> str:
    """``[env: STREAMKIT_X; default: V]`` for settings field ``field`` ("" omits the
    default); ``note`` follows the variable's name."""
    if default is None:
        value = Settings.model_fields[field].default
        default = "none" if value is None else str(value)
    env = f"env: STREAMKIT_{field.upper()}{', ' + note if note else ''}"
    return f"[{env}; default: {default}]" if default else f"[{env}]"


def settings_flags(fn: F) -> F:
    """Add a flag per entry of :data:`SETTINGS_FLAGS`, plus ``--publish-topic``."""
    fn = click.option(
        "--publish-topic",
        "publish_topics",
        multiple=True,
        metavar="EVENT_TYPE=TOPIC",
        callback=_publish_topics,
        help="Topic for ctx.publish of EVENT_TYPE (repeatable) "
        + env_default("publish_topics", "the router's publish_topics"),
    )(fn)
    for flag, field, kind, text in reversed(SETTINGS_FLAGS):
        fn = click.option(flag, field, type=kind, help=f"{text} {env_default(field)}")(fn)
    return fn


def _publish_topics(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> dict[str, str] | None:
    if not value:
        return None
    try:
        return parse_pairs(value)
    except click.BadParameter as exc:
        raise click.BadParameter(exc.message, param_hint="--publish-topic") from None
