"""``streamkit topics create|ensure|list|describe``: the topics a service needs."""

from __future__ import annotations

from typing import Any

import click

from streamkit.cli.common import friendly_errors, kafka_options, parse_pairs
from streamkit.cli.options import connect, group_router_sources, json_option
from streamkit.ops import topics as ops_topics
from streamkit.ops.render import console, print_json, table
from streamkit.preflight import DESCRIBE, Access, check_access

replication_option = click.option(
    "--replication-factor",
    "-r",
    type=int,
    default=-1,
    show_default=True,
    help="Replication factor of new topics (-1: the broker's default).",
)


@click.group()
def topics() -> None:
    """Create, list and describe topics; create the topics a service needs."""


@topics.command()
@click.argument("name")
@click.option(
    "--partitions",
    "-p",
    type=click.IntRange(min=1),
    required=True,
    help="Partition count (the unit of parallelism: one consumer per partition).",
)
@replication_option
@click.option(
    "--config",
    "-c",
    "configs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Topic config, e.g. -c retention.ms=604800000 (repeatable).",
)
@click.option("--if-not-exists", is_flag=True, help="Succeed when NAME exists already.")
@json_option
@kafka_options
@friendly_errors
def create(
    name: str,
    partitions: int,
    replication_factor: int,
    configs: tuple[str, ...],
    if_not_exists: bool,
    as_json: bool,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
) -> None:
    """Create topic NAME, e.g. a service's source topic.

    \b
    streamkit topics create orders --partitions 6 -c retention.ms=604800000
    """
    config = _pairs(configs, "--config")
    cluster = connect(bootstrap_servers, kafka)
    spec = ops_topics.TopicSpec(name, partitions, replication_factor, config)
    created = bool(ops_topics.create(cluster, [spec], exist_ok=if_not_exists))
    if as_json:
        print_json({"name": name, "partitions": partitions, "created": created})
    else:
        click.echo(f"{'created' if created else 'exists '}  {name}")


def _pairs(pairs: tuple[str, ...], hint: str) -> dict[str, str]:
    try:
        return parse_pairs(pairs)
    except click.BadParameter as exc:
        raise click.BadParameter(exc.message, param_hint=hint) from None


@topics.command()
@click.argument("module")
@click.option(
    "--topic",
    "-t",
    "source_topics",
    multiple=True,
    help="Source topic (repeatable) "
    "[env: STREAMKIT_TOPICS, comma-separated; default: the router's topics]",
)
@click.option("--group", "-g", help="Consumer group id [env: STREAMKIT_GROUP_ID].")
@click.option(
    "--partitions",
    "-p",
    type=click.IntRange(min=1),
    help="Create missing source topics with this many partitions "
    "[default: a missing source is an error].",
)
@replication_option
@json_option
@kafka_options
@friendly_errors
def ensure(
    module: str,
    source_topics: tuple[str, ...],
    group: str | None,
    partitions: int | None,
    replication_factor: int,
    as_json: bool,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
) -> None:
    """Create MODULE's retry-tier and dead-letter topics that do not exist yet.

    Each gets its source topic's partition count; with --partitions, missing source
    topics are created first. Existing topics are left alone.
    """
    group, router, sources = group_router_sources(module, group, source_topics)
    cluster = connect(bootstrap_servers, kafka)
    # Sources we may not describe look missing: say which ACL instead.
    conf = cluster.settings.client_settings()
    check_access(cluster.admin, Access().topic(sources, DESCRIBE), conf, cluster.timeout)
    rows = ops_topics.ensure(
        cluster,
        sources,
        router.derived_topics(sources, group),
        partitions=partitions,
        replication_factor=replication_factor,
    )
    if as_json:
        print_json({"group": group, "topics": [r.as_dict() for r in rows]})
        return
    for row in rows:
        click.echo(f"{'created' if row.created else 'exists '}  {row.name}")


@topics.command("list")
@click.option("--internal", is_flag=True, help="Also list internal topics (__consumer_offsets).")
@json_option
@kafka_options
@friendly_errors
def list_(
    internal: bool, as_json: bool, bootstrap_servers: str | None, kafka: tuple[str, ...]
) -> None:
    """List the cluster's topics with their partition counts."""
    rows = ops_topics.list_topics(connect(bootstrap_servers, kafka), internal=internal)
    if as_json:
        print_json({"topics": rows})
        return
    cells = [[r["name"], r["partitions"], r["replication_factor"]] for r in rows]
    console().print(table(None, ["topic", "partitions", "replication"], cells, numeric=2))


@topics.command()
@click.argument("name")
@click.option("--all-configs", is_flag=True, help="Every config, not only those set on NAME.")
@json_option
@kafka_options
@friendly_errors
def describe(
    name: str,
    all_configs: bool,
    as_json: bool,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
) -> None:
    """Show topic NAME: partitions (leader, replicas, offsets) and its configs."""
    info = ops_topics.describe(connect(bootstrap_servers, kafka), name, all_configs=all_configs)
    if as_json:
        print_json(info)
        return
    _print_description(info)


def _print_description(info: dict[str, Any]) -> None:
    out = console()
    columns = ["partition", "leader", "replicas", "in sync", "low offset", "end offset", "records"]
    rows = [
        [p["partition"], p["leader"], ",".join(map(str, p["replicas"])),
         ",".join(map(str, p["isr"])), p["low_offset"], p["end_offset"], p["records"]]
        for p in info["partitions"]
    ]  # fmt: skip
    out.print(table(info["topic"], columns, rows, numeric=3))
    configs = info["configs"]
    if configs:
        out.print(table("configs", ["name", "value"], configs.items()))
    else:
        out.print("configs: broker defaults (--all-configs to list them)")
