"""``streamkit dlq list|show|stats|purge DLQ_TOPIC``: inspect and clean dead-letter topics.

Reads use a throwaway consumer on ``assign()`` from the low to the high watermark of
the moment: they commit nothing and end even while records keep arriving.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
import orjson
from rich.text import Text

from streamkit.cli.common import (
    friendly_errors,
    kafka_options,
)
from streamkit.cli.options import (
    TIME,
    connect,
    filter_options,
    json_option,
    pop_filter,
    registry_option,
    schema_view,
)
from streamkit.ops import dlq as ops_dlq
from streamkit.ops import ledger
from streamkit.ops.records import SchemaView
from streamkit.ops.render import console, plain, print_json, printable, shorten, table
from streamkit.ops.timeparse import human_age, iso, now_ms, parse_time

F = TypeVar("F", bound=Callable[..., Any])
LIST_LIMIT = 100  # rows `dlq list` shows unless --limit says otherwise
SHOW_CAP = 4000  # characters of one key or header `dlq show` prints (payload: all of it)


@click.group()
def dlq() -> None:
    """Inspect, count and purge dead-letter topics."""


@dlq.command("list")
@click.argument("dlq_topic")
@filter_options
@registry_option
@json_option
@kafka_options
@friendly_errors
def list_(
    dlq_topic: str,
    schema_registry: str | None,
    as_json: bool,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
    **opts: Any,
) -> None:
    """List the records of DLQ_TOPIC: time, position, key, event and error type, message."""
    flt, partitions, limit = pop_filter(opts)
    cluster = connect(bootstrap_servers, kafka)
    listing = ops_dlq.list_records(
        cluster, dlq_topic, flt, partitions=partitions, limit=limit or LIST_LIMIT
    )
    with schema_view(schema_registry) as view:
        _print_listing(dlq_topic, listing, as_json, view)


def _print_listing(
    dlq_topic: str, listing: ops_dlq.Listing, as_json: bool, view: SchemaView | None
) -> None:
    if as_json:
        print_json(
            {
                "topic": dlq_topic,
                "matched": listing.matched,
                "scanned": listing.scanned,
                "records": [
                    _with_replay(r.summary(view), listing.replay_of(r)) for r in listing.records
                ],
            }
        )
        return
    out = console()
    out.print(_records_table(dlq_topic, listing, view))
    shown = len(listing.records)
    more = f" (showing {shown}; use --limit)" if shown < listing.matched else ""
    out.print(f"{listing.matched} of {listing.scanned} records matched{more}")


def _with_replay(fields: dict[str, Any], entry: ledger.Entry | None) -> dict[str, Any]:
    return {**fields, "replayed": None if entry is None else entry.as_dict()}


def _records_table(topic: str, listing: ops_dlq.Listing, view: SchemaView | None) -> Any:
    columns = ["time", "partition/offset", "key", "event type", "error type", "message",
               "attempts", "replayed"]  # fmt: skip
    rows = []
    for record in listing.records:
        s = record.summary(view)
        entry = listing.replay_of(record)
        rows.append(
            [
                s["timestamp"],
                f"{s['partition']}/{s['offset']}",
                shorten(s["key"], 24),
                s["event_type"],
                s["error_type"],
                shorten(s["error_message"], 60),
                s["attempt"],
                "-" if entry is None else entry.as_dict()["at"],
            ]
        )
    return table(topic, columns, rows, numeric=2)


@dlq.command()
@click.argument("dlq_topic")
@click.option(
    "--partition",
    "-p",
    type=click.IntRange(min=0),
    required=True,
    help="The record's partition in DLQ_TOPIC (as `dlq list` shows it).",
)
@click.option(
    "--offset",
    "-o",
    type=click.IntRange(min=0),
    required=True,
    help="The record's offset in that partition.",
)
@registry_option
@json_option
@kafka_options
@friendly_errors
def show(
    dlq_topic: str,
    partition: int,
    offset: int,
    schema_registry: str | None,
    as_json: bool,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
) -> None:
    """Show one record in full: every header, the traceback, the payload."""
    cluster = connect(bootstrap_servers, kafka)
    record = ops_dlq.get_record(cluster, dlq_topic, partition, offset)
    with schema_view(schema_registry) as view:
        details = _with_replay(
            record.details(view), ops_dlq.replay_of(cluster, dlq_topic, partition, offset)
        )
    if as_json:
        print_json(details)
        return
    _print_details(details)


def _print_details(d: dict[str, Any]) -> None:
    out = console()
    where = f"{d['topic']}/{d['partition']}/{d['offset']}"
    out.print(Text.assemble((printable(where), "bold"), f"  {d['timestamp']}"))
    out.print(Text("key: ").append(plain("(none)" if d["key"] is None else d["key"], SHOW_CAP)))
    replay = d["replayed"]
    out.print(
        "replayed: no"
        if replay is None
        else Text("replayed: ").append(plain(f"{replay['at']} to {replay['to']}", SHOW_CAP))
    )
    headers = [
        [name, "(see traceback below)" if name.endswith("-traceback") else value]
        for name, value in d["headers"]
    ]
    out.print(table("headers", ["name", "value"], headers, cap=SHOW_CAP))
    if d["traceback"]:
        out.rule("traceback")
        out.print(plain(d["traceback"], None, lines=True))
    schema = d.get("schema")
    if schema is not None:
        out.print(Text("schema: ").append(plain(_schema_line(schema), SHOW_CAP)))
    out.rule("payload")
    if d["payload_is_json"]:
        shown = orjson.dumps(d["payload"], option=orjson.OPT_INDENT_2).decode()
        out.print(plain(shown, None, lines=True))
    else:
        out.print(plain(d["payload"] if d["payload"] is not None else "(null)", None, lines=True))


def _schema_line(schema: dict[str, Any]) -> str:
    if "error" in schema:
        return f"id {schema['id']} (not decoded: {schema['error']})"
    return f"id {schema['id']}, {schema['type']}, {schema['name'] or '(no name)'}"


@dlq.command("stats")
@click.argument("dlq_topic")
@filter_options
@json_option
@kafka_options
@friendly_errors
def stats_(
    dlq_topic: str,
    as_json: bool,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
    **opts: Any,
) -> None:
    """Count the records of DLQ_TOPIC by event type and error type; the oldest one's age."""
    flt, partitions, _limit = pop_filter(opts)
    cluster = connect(bootstrap_servers, kafka)
    result = ops_dlq.stats(cluster, dlq_topic, flt, partitions).as_dict(now_ms())
    if as_json:
        print_json({"topic": dlq_topic, **result})
        return
    out = console()
    for title, counts in (
        ("by event type", result["by_event_type"]),
        ("by error type", result["by_error_type"]),
        ("by original topic", result["by_original_topic"]),
    ):
        out.print(table(title, ["name", "records"], counts.items(), numeric=1))
    oldest = result["oldest_ms"]
    age = (
        ""
        if oldest is None
        else f"; oldest {iso(oldest)} ({human_age(result['oldest_age_s'])} ago)"
    )
    out.print(f"{result['total']} records ({result['replayed']} replayed){age}")


@dlq.command()
@click.argument("dlq_topic")
@click.option("--before", type=TIME, help="Delete records dead-lettered before TIME.")
@click.option("--all", "everything", is_flag=True, help="Delete every record stored now.")
@click.option("--partition", "-p", "partitions", type=int, multiple=True,
              help="Only this partition (repeatable).")  # fmt: skip
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@kafka_options
@friendly_errors
def purge(
    dlq_topic: str,
    before: str | None,
    everything: bool,
    partitions: tuple[int, ...],
    yes: bool,
    as_json: bool,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
) -> None:
    """Delete records of DLQ_TOPIC for good (Kafka DeleteRecords), after confirmation."""
    if everything == (before is not None):
        raise click.UsageError("give exactly one of --before TIME and --all")
    cluster = connect(bootstrap_servers, kafka)
    before_ms = None if before is None else parse_time(before)
    cuts = ops_dlq.plan_purge(cluster, dlq_topic, before_ms, partitions)
    count = sum(c.count for c in cuts)
    if count and not yes:
        when = "" if before_ms is None else f" dead-lettered before {iso(before_ms)}"
        click.confirm(
            f"Delete {count} records{when} from {dlq_topic}? This cannot be undone",
            abort=True,
            err=True,
        )
    lows = ops_dlq.purge(cluster, dlq_topic, cuts)
    rows = [
        {
            "partition": c.partition,
            "deleted": c.count,
            "low_watermark": lows.get(c.partition, c.low),
        }
        for c in cuts
    ]
    if as_json:
        print_json({"topic": dlq_topic, "deleted": count, "partitions": rows})
        return
    cells = [[r["partition"], r["deleted"], r["low_watermark"]] for r in rows]
    console().print(table(dlq_topic, ["partition", "deleted", "new low offset"], cells, numeric=2))
    console().print(f"deleted {count} records" if count else "nothing to delete")
