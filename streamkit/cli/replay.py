"""``streamkit replay DLQ_TOPIC``: send dead letters back to the group that failed them."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click

from streamkit.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    friendly_errors,
    kafka_options,
)
from streamkit.cli.options import (
    connect,
    filter_options,
    json_option,
    pop_filter,
    registry_option,
    schema_view,
)
from streamkit.errors import StreamkitError
from streamkit.ops.records import DeadLetter, SchemaView
from streamkit.ops.render import console, print_json, progress_bar, shorten, table
from streamkit.ops.replay import Replayer, ReplayOptions, ReplayReport
from streamkit.preflight import check_access, replay_access
from streamkit.retry.topics import TopicNames


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (finish the batch, commit, exit); a second one aborts."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.command()
@click.argument("dlq_topic")
@click.option(
    "--to",
    "to_topic",
    metavar="TOPIC",
    help="Send every record to TOPIC instead of its group's first retry tier. Naming the "
    "source topic makes every group on it see the records again.",
)
@filter_options
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; change nothing.")
@click.option(
    "--again",
    is_flag=True,
    help="Also replay records replayed before (by any earlier replay), from the oldest on.",
)
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Records per second.")
@click.option(
    "--replay-group",
    help="Consumer group holding the replay's progress "
    "[default: streamkit-replay.DLQ_TOPIC, plus a hash of the filters when filtering].",
)
@click.option(
    "--retry-template",
    default=TopicNames().retry_template,
    show_default=True,
    help="Retry tier naming, if the service overrides Router(topic_names=...).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before replaying to --to TOPIC.")
@registry_option
@json_option
@kafka_options
@friendly_errors
def replay(
    dlq_topic: str,
    to_topic: str | None,
    dry_run: bool,
    again: bool,
    rate: float | None,
    replay_group: str | None,
    retry_template: str,
    yes: bool,
    schema_registry: str | None,
    as_json: bool,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
    **opts: Any,
) -> None:
    """Re-publish the dead letters of DLQ_TOPIC so their consumer group handles them again.

    Each record goes to the first retry tier of the group that dead-lettered it, with
    its attempt count reset; other groups on the source topic see nothing. Key, value
    and original headers are kept byte for byte. Progress is committed per batch, after
    the broker acknowledged every record of it: Ctrl-C stops cleanly, and running the
    same command again resumes where it stopped.

    Every replayed record is noted in the DLQ's ledger topic, DLQ_TOPIC.replayed: a later
    replay skips it, whatever its filters, unless --again. `dlq list` shows the notes.
    """
    flt, partitions, limit = pop_filter(opts)
    if to_topic and not dry_run and not yes and sys.stdin.isatty():
        click.confirm(
            f"Replay to {to_topic}? Every consumer group reading it will see these records",
            abort=True,
            err=True,
        )
    cluster = connect(bootstrap_servers, kafka)
    options = ReplayOptions(
        dlq_topic,
        flt=flt,
        to=to_topic,
        partitions=partitions,
        limit=limit,
        rate=rate,
        group=replay_group,
        names=TopicNames(retry_template=retry_template),
        dry_run=dry_run,
        again=again,
    )
    conf = cluster.settings.client_settings()
    check_access(cluster.admin, replay_access(options), conf, cluster.timeout)
    report = _run(cluster, options, show_progress=not as_json and sys.stderr.isatty())
    with schema_view(schema_registry) as view:
        _print(report, as_json, view)
    _exit(report)


def _run(cluster: Any, options: ReplayOptions, *, show_progress: bool) -> ReplayReport:
    stop = threading.Event()
    verb = "checking" if options.dry_run else "replaying"
    with stop_on_signals(stop), progress_bar(show_progress) as bar:
        task = bar.add_task(verb, total=None)

        def update(report: ReplayReport) -> None:
            bar.update(
                task,
                total=report.total,
                completed=report.scanned,
                description=f"{verb}: {report.replayed} sent, {report.skipped} skipped",
            )

        return Replayer(cluster, options, stop=stop, progress=update).run()


def _print(report: ReplayReport, as_json: bool, view: SchemaView | None) -> None:
    """The report; ``view`` names registry-encoded records by their schema (display only)."""
    sample = [
        {**record.summary(view), **_schema(record, view), "target": target}
        for record, target in report.sample
    ]
    if as_json:
        print_json({**report.as_dict(), **({"sample": sample} if report.dry_run else {})})
        return
    out = console()
    if report.dry_run and sample:
        rows = [
            [s["partition"], s["offset"], shorten(s["key"], 24), s["event_type"],
             s["error_type"], s["target"]]
            for s in sample
        ]  # fmt: skip
        columns = ["partition", "offset", "key", "event type", "error type", "target"]
        out.print(table(f"sample (first {len(sample)})", columns, rows))
    verb = "would replay" if report.dry_run else "replayed"
    counts = [[verb, report.replayed], ["skipped by filter", report.skipped]]
    if report.already:
        counts.append(["replayed before (--again)", report.already])
    if not report.dry_run:
        counts.append(["failed", report.failed])
    counts += [[f"  to {topic}", n] for topic, n in sorted(report.targets.items())]
    out.print(table(None, ["", "records"], counts, numeric=1))
    out.print(f"replay group {report.group}, {report.seconds:.1f}s")


def _schema(record: DeadLetter, view: SchemaView | None) -> dict[str, Any]:
    if view is None or record.value is None or not view.encoded(record.value):
        return {}
    try:
        return {"schema": view.schema(record.value)}
    except StreamkitError as exc:  # shown, not fatal: the replay itself never decodes
        return {"schema": {"error": str(exc)}}


def _exit(report: ReplayReport) -> None:
    if report.failed:
        click.echo(
            f"streamkit: error: {report.failed} records failed ({report.error}); "
            "run the same command again to resume from the first failure",
            err=True,
        )
        sys.exit(EXIT_FAILED)
    if report.interrupted:
        click.echo("streamkit: interrupted; run the same command again to resume", err=True)
        sys.exit(EXIT_INTERRUPTED)
