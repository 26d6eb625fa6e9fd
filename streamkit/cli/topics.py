"""``streamkit topics ensure MODULE``: create the retry tiers and DLQ of a service."""

from __future__ import annotations

import click

from streamkit.admin import connect, ensure_topics
from streamkit.cli.common import friendly_errors, kafka_options, settings_overrides
from streamkit.config import Settings
from streamkit.errors import ConfigError
from streamkit.loader import load_router
from streamkit.preflight import DESCRIBE, Access, check_access


@click.group()
def topics() -> None:
    """Manage the topics a service needs."""


@topics.command()
@click.argument("module")
@click.option("--topic", "-t", "source_topics", multiple=True, help="Source topic (repeatable).")
@click.option("--group", "-g", help="Consumer group id [env STREAMKIT_GROUP_ID].")
@click.option(
    "--replication-factor",
    type=int,
    default=-1,
    show_default=True,
    help="Replication factor of new topics (-1: broker default).",
)
@kafka_options
@friendly_errors
def ensure(
    module: str,
    source_topics: tuple[str, ...],
    group: str | None,
    replication_factor: int,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
) -> None:
    """Create MODULE's retry-tier and dead-letter topics that do not exist yet.

    Each gets its source topic's partition count. Existing topics are left alone.
    """
    settings = Settings(**settings_overrides(bootstrap_servers, kafka))
    group = group or settings.group_id
    if not group:
        raise ConfigError("no consumer group: pass --group or set STREAMKIT_GROUP_ID")
    router = load_router(module)
    sources = list(source_topics or settings.topics or router.topics)
    if not sources:
        raise ConfigError("no source topics: pass --topic or declare Router(topics=...)")
    wanted = router.derived_topics(sources, group)
    conf = settings.client_settings()
    admin, metadata = connect(conf, settings.connect_timeout)
    # Sources we may not describe look missing: say which ACL instead.
    check_access(admin, Access().topic(sources, DESCRIBE), conf, settings.connect_timeout)
    created = ensure_topics(
        admin, metadata, wanted, replication_factor=replication_factor, settings=conf
    )
    for name in wanted:
        click.echo(f"{'created' if name in created else 'exists '}  {name}")
