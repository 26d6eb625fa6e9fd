"""``streamkit produce TOPIC``: publish events by hand or in bulk from JSON lines."""

from __future__ import annotations

from typing import TextIO

import click

from streamkit.cli.common import friendly_errors, kafka_options
from streamkit.cli.options import connect, json_option
from streamkit.loader import load_router
from streamkit.ops.produce import Outgoing, check_against, parse_data, parse_lines, publish
from streamkit.ops.render import print_json


@click.command()
@click.argument("topic")
@click.option("--event-type", "-e", help="Event type (the default for --file lines).")
@click.option("--data", "-d", metavar="JSON", help="The event's data, as JSON.")
@click.option("--key", "-k", help="Record key (the default for --file lines).")
@click.option(
    "--file",
    "-f",
    "path",
    type=click.File("r", encoding="utf-8"),
    help='JSON lines {"event_type": ..., "data": ..., "key": ...}; - for stdin.',
)
@click.option(
    "--module",
    "-m",
    metavar="MODULE",
    help="Check each event against the handler of its type in MODULE before sending.",
)
@json_option
@kafka_options
@friendly_errors
def produce(
    topic: str,
    event_type: str | None,
    data: str | None,
    key: str | None,
    path: TextIO | None,
    module: str | None,
    as_json: bool,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
) -> None:
    """Publish events to TOPIC as envelopes, through the idempotent producer.

    \b
    One event:  streamkit produce orders -e order.created -d '{"order_id": "1"}' -k 1
    In bulk:    streamkit produce orders --file events.jsonl   (or --file - for stdin)

    Every line is checked before anything is sent: a bad line sends nothing. Data must
    be a JSON object; with --module it must also fit the model of its type's handler.
    """
    events = _events(event_type, data, key, path)
    if module is not None:
        check_against(load_router(module), events, module)
    cluster = connect(bootstrap_servers, kafka)
    count = publish(cluster, topic, events)
    if as_json:
        print_json({"topic": topic, "produced": count})
    else:
        click.echo(f"produced {count} event{'s' if count != 1 else ''} to {topic}")


def _events(
    event_type: str | None, data: str | None, key: str | None, path: TextIO | None
) -> list[Outgoing]:
    if path is not None:
        if data is not None:
            raise click.UsageError("give --data or --file, not both")
        name = "stdin" if path.name in ("-", "<stdin>") else str(path.name)
        return parse_lines(path, name, event_type, key)
    if data is None or event_type is None:
        raise click.UsageError("give --event-type and --data, or --file (- for stdin)")
    return [Outgoing(event_type, parse_data(data), key)]
