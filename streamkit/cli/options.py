"""Options and the cluster connection shared by the operator commands (dlq, replay, lag, ...)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from streamkit.cli.common import announce_connect, settings_overrides
from streamkit.config import Settings
from streamkit.errors import ConfigError
from streamkit.handlers.registry import Router
from streamkit.loader import load_router
from streamkit.ops.cluster import Cluster
from streamkit.ops.filters import RecordFilter
from streamkit.ops.records import SchemaView
from streamkit.ops.timeparse import parse_time

F = TypeVar("F", bound=Callable[..., Any])


class TimeParam(click.ParamType[str, Any]):
    """An ISO timestamp or a duration ago; kept as typed (a replay group is keyed on it)."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """Validate now, resolve later."""
        try:
            parse_time(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


TIME = TimeParam()
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, not tables.")


def filter_options(fn: F) -> F:
    """``--event-type --error-type --key --since --until --partition --limit``."""
    options = [
        click.option("--limit", type=click.IntRange(min=1), help="At most this many records."),
        click.option("--partition", "-p", "partitions", type=int, multiple=True,
                     help="Only this partition of the DLQ (repeatable)."),
        click.option("--until", type=TIME, help="Records dead-lettered before TIME."),
        click.option("--since", type=TIME,
                     help="Records dead-lettered at or after TIME (ISO, or ago: 30m, 2h, 7d)."),
        click.option("--key", "keys", multiple=True, help="Only this record key (repeatable)."),
        click.option("--error-type", "error_types", multiple=True,
                     help="Only this exception class, e.g. TimeoutError (repeatable)."),
        click.option("--event-type", "event_types", multiple=True,
                     help="Only this event type (repeatable)."),
    ]  # fmt: skip
    for option in options:
        fn = option(fn)
    return fn


def pop_filter(opts: dict[str, Any]) -> tuple[RecordFilter, tuple[int, ...], int | None]:
    """Take the filter options out of ``opts``: (filter, partitions, limit)."""
    flt = RecordFilter.build(
        event_types=opts.pop("event_types"),
        error_types=opts.pop("error_types"),
        keys=opts.pop("keys"),
        since=opts.pop("since"),
        until=opts.pop("until"),
    )
    return flt, tuple(opts.pop("partitions")), opts.pop("limit")


def connect(bootstrap_servers: str | None, kafka: tuple[str, ...]) -> Cluster:
    """Settings from flags and environment, and a connection (fails fast without a broker)."""
    settings = Settings(**settings_overrides(bootstrap_servers, kafka))
    announce_connect(str(settings.client_settings()["bootstrap.servers"]))
    return Cluster.connect(settings)


registry_option = click.option(
    "--schema-registry",
    "schema_registry",
    metavar="URL",
    envvar="STREAMKIT_SCHEMA_REGISTRY",
    help="Schema registry URL: show registry-encoded (Avro, JSON Schema) values decoded, "
    "with their schema id and name; bytes are never re-encoded "
    "[env: STREAMKIT_SCHEMA_REGISTRY].",
)


@contextmanager
def schema_view(url: str | None) -> Iterator[SchemaView | None]:
    """The registry view for ``--schema-registry`` (closed afterwards), or None without one."""
    if not url:
        yield None
        return
    try:
        from streamkit.codecs.registry_view import RegistryView
    except ImportError:
        raise click.UsageError(
            "--schema-registry needs the registry extra: pip install 'streamkit[registry]'"
        ) from None
    view = RegistryView(url)
    try:
        yield view
    finally:
        view.close()


def group_router_sources(
    module: str, group: str | None, source_topics: tuple[str, ...]
) -> tuple[str, Router, list[str]]:
    """The consumer group, the router of ``module`` and its source topics, for commands
    that act for a service (flags first, then ``STREAMKIT_*``, then the router)."""
    settings = Settings()
    group = group or settings.group_id
    if not group:
        raise ConfigError("no consumer group: pass --group or set STREAMKIT_GROUP_ID")
    router = load_router(module)
    sources = list(source_topics or settings.topics or router.topics)
    if not sources:
        raise ConfigError("no source topics: pass --topic or declare Router(topics=...)")
    return group, router, sources
