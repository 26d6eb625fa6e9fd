"""``streamkit lag --group G``: how far a consumer group is behind, per partition."""

from __future__ import annotations

import sys

import click

from streamkit.cli.common import EXIT_LAG, friendly_errors, kafka_options
from streamkit.cli.options import connect, json_option
from streamkit.ops.lag import group_lag, total_lag
from streamkit.ops.render import console, print_json, table


@click.command()
@click.option(
    "--group",
    "-g",
    required=True,
    envvar="STREAMKIT_GROUP_ID",
    help="Consumer group id [env: STREAMKIT_GROUP_ID].",
)
@click.option(
    "--topic",
    "-t",
    "topics",
    multiple=True,
    help="Only this topic, every partition (repeatable) [default: what the group committed].",
)
@click.option(
    "--max-lag",
    type=click.IntRange(min=0),
    help="Exit 1 when the total lag is above this (for scripts and probes).",
)
@json_option
@kafka_options
@friendly_errors
def lag(
    group: str,
    topics: tuple[str, ...],
    max_lag: int | None,
    as_json: bool,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
) -> None:
    """Show how far a consumer group is behind: per partition and in total.

    Committed offset, end offset and lag per topic/partition. A partition the group
    never committed counts every record stored there.
    """
    cluster = connect(bootstrap_servers, kafka)
    rows = group_lag(cluster.admin, group, topics, cluster.timeout)
    total = total_lag(rows)
    exceeded = max_lag is not None and total > max_lag
    if as_json:
        print_json(
            {
                "group": group,
                "total": total,
                "max_lag": max_lag,
                "exceeded": exceeded,
                "partitions": [r.as_dict() for r in rows],
            }
        )
    else:
        cells = [
            [r.topic, r.partition, "-" if r.committed is None else r.committed, r.end, r.lag]
            for r in rows
        ]
        cells.append(["total", "", "", "", total])
        columns = ["topic", "partition", "committed", "end", "lag"]
        console().print(table(f"group {group}", columns, cells, numeric=4))
    if exceeded:
        click.echo(f"streamkit: lag {total} is above --max-lag {max_lag}", err=True)
        sys.exit(EXIT_LAG)
