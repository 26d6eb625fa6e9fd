"""Generate deploy/grafana/dashboards/streamkit.json with grafana-foundation-sdk.

    python deploy/grafana/build_dashboard.py          # rewrite the JSON
    python deploy/grafana/build_dashboard.py --check  # exit 1 if the JSON is out of date

Edit the panel table below, never the JSON: tests/unit/test_deploy.py fails when the
committed JSON differs from what this script renders. Every expression may only use metric
names from streamkit.observability.metrics.METRIC_NAMES (the test checks that too).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)

OUTPUT = Path(__file__).resolve().parent / "dashboards" / "streamkit.json"
UID = "streamkit-consumers"

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
G = 'group=~"$group"'
# Producer and handler-latency metrics have no group label (one per process); restrict
# them to the instances that run a selected group.
IN_GROUP = f"and on (instance) streamkit_assigned_partitions{{{G}}}"
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    """One PromQL target and its legend."""

    expr: str
    legend: str
    exemplars: bool = False  # show trace-id exemplars (streamkit[otel] tracing on)


@dataclass(frozen=True)
class PanelSpec:
    """A panel: its kind decides the builder, ``unit`` is a Grafana unit id."""

    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    kind: str = "timeseries"
    width: int = 12


@dataclass(frozen=True)
class RowSpec:
    """A dashboard row and its panels."""

    title: str
    panels: tuple[PanelSpec, ...] = field(default_factory=tuple)


def _quantiles(bucket_expr: str) -> tuple[Query, ...]:
    return tuple(
        Query(f"histogram_quantile({q}, {bucket_expr})", f"p{round(q * 100)}")
        for q in (0.5, 0.95, 0.99)
    )


def _buckets(histogram: str, by: str = "le") -> str:
    return f"sum by ({by}) (rate({histogram}_bucket[{RATE}]) {IN_GROUP})"


HANDLER_BUCKETS = _buckets("streamkit_handler_duration_seconds")
PRODUCE_BUCKETS = _buckets("streamkit_produce_latency_seconds")

ROWS: tuple[RowSpec, ...] = (
    RowSpec("Lag", (
        PanelSpec(
            "Consumer lag (messages)",
            (Query(f"max by (topic, partition) (streamkit_consumer_lag{{{G}}})",
                   "{{topic}}/{{partition}}"),),
            description="End offset minus committed offset, per partition.",
        ),
        PanelSpec(
            "Lag (age of oldest unfinished event)",
            (Query(f"max by (topic, partition) (streamkit_consumer_lag_seconds{{{G}}})",
                   "{{topic}}/{{partition}}"),),
            unit="s",
            description="0 when caught up; a rising line is one stuck key or a slow handler.",
        ),
    )),
    RowSpec("Throughput", (
        PanelSpec(
            "Events/s by outcome",
            (Query(f"sum by (outcome) (rate(streamkit_events_total{{{G}}}[{RATE}]))",
                   "{{outcome}}"),),
            unit="ops",
        ),
        PanelSpec(
            "Events/s by event type",
            (Query(f"sum by (event_type) (rate(streamkit_events_total{{{G}}}[{RATE}]))",
                   "{{event_type}}"),
             Query(f"sum by (topic) (rate(streamkit_decode_errors_total{{{G}}}[{RATE}]))",
                   "decode errors {{topic}}")),
            unit="ops",
        ),
    )),
    RowSpec("Handler latency", (
        PanelSpec(
            "Handler duration quantiles",
            _quantiles(HANDLER_BUCKETS),
            unit="s",
            description="Handler run time including validation, for instances in the group.",
        ),
        PanelSpec(
            "Handler p99 by event type",
            (Query("histogram_quantile(0.99, "
                   f"{_buckets('streamkit_handler_duration_seconds', 'le, event_type')})",
                   "{{event_type}}", exemplars=True),),
            unit="s",
            description="With tracing on, the dots are exemplars: a handler call's duration "
            "and trace id; click one to open its trace.",
        ),
    )),
    RowSpec("Retries and dead letters", (
        PanelSpec(
            "Retries/s by event type",
            (Query(f"sum by (event_type) (rate(streamkit_retries_total{{{G}}}[{RATE}]))",
                   "{{event_type}}"),),
            unit="ops",
        ),
        PanelSpec(
            "Dead letters by error type",
            (Query(f"sum by (error_type) (increase(streamkit_dead_letter_total{{{G}}}[{RATE}]))",
                   "{{error_type}}"),),
            description="Events sent to the DLQ per interval; replay with `streamkit replay`.",
        ),
        PanelSpec(
            "Held: waiting on a dependency",
            # Series appear with the first wait (the dependency is a label): 0 until then.
            (Query(f"sum by (dependency) (streamkit_waiting_on_dependency{{{G}}}) "
                   "or on() vector(0)", "held on {{dependency}}"),
             Query("sum by (dependency) "
                   f"(rate(streamkit_dependency_waits_total{{{G}}}[{RATE}])) or on() vector(0)",
                   "waits/s {{dependency}}")),
            description="A service events need (schema registry, ...) does not answer: "
            "they wait in place, offsets uncommitted, never dead-lettered.",
        ),
    )),
    RowSpec("Rebalances and commits", (
        PanelSpec(
            "Rebalances by kind",
            (Query(f"sum by (kind) (increase(streamkit_rebalances_total{{{G}}}[{RATE}]))",
                   "{{kind}}"),),
        ),
        PanelSpec(
            "Commits/s by outcome",
            (Query(f"sum by (outcome) (rate(streamkit_commits_total{{{G}}}[{RATE}]))",
                   "{{outcome}}"),),
            unit="ops",
            description="Failed commits mean events after the last good commit run again.",
        ),
    )),
    RowSpec("Producer", (
        PanelSpec(
            "Produced/s by outcome",
            (Query(f"sum by (outcome) (rate(streamkit_produced_total[{RATE}]) {IN_GROUP})",
                   "{{outcome}}"),
             Query("sum by (target) "
                   f"(rate(streamkit_publish_failures_total{{{G}}}[{RATE}]))",
                   "failed {{target}} publish"),
             Query(f"sum(rate(streamkit_dead_letter_values_dropped_total{{{G}}}[{RATE}]))",
                   "dead letters without value")),
            unit="ops",
            description="A failed retry/DLQ publish holds the partition until it succeeds. "
            "A dead letter too large even with shrunk headers goes out without its value.",
            width=8,
        ),
        PanelSpec(
            "Delivery latency quantiles",
            _quantiles(PRODUCE_BUCKETS),
            unit="s",
            description="Send to broker acknowledgement (acks=all).",
            width=8,
        ),
        PanelSpec(
            "Transactions/s (exactly-once)",
            (Query(f"sum by (outcome) (rate(streamkit_transactions_total{{{G}}}[{RATE}]))",
                   "{{outcome}}"),
             Query("histogram_quantile(0.99, sum by (le) "
                   f"(rate(streamkit_transaction_duration_seconds_bucket{{{G}}}[{RATE}])))",
                   "p99 duration (s)")),
            unit="ops",
            description="Exactly-once mode: one transaction per commit interval; an abort "
            "rewinds the partitions and does the batch again.",
            width=8,
        ),
    )),
    RowSpec("Idempotency", (
        PanelSpec(
            "Duplicates skipped/s and dedupe store errors/s",
            (Query("sum by (topic, event_type) "
                   f"(rate(streamkit_duplicates_skipped_total{{{G}}}[{RATE}]))",
                   "duplicates {{topic}} {{event_type}}"),
             # No Dedupe middleware, no store label: 0 rather than no series.
             Query("sum by (store) "
                   f"(rate(streamkit_dedupe_store_errors_total{{{G}}}[{RATE}])) or on() vector(0)",
                   "store errors {{store}}")),
            unit="ops",
            description="Dedupe middleware (streamkit.idempotency): duplicates are skipped "
            "and committed; store errors hold their events (offsets not committed) until "
            "the store answers.",
            width=24,
        ),
    )),
    RowSpec("Instances", (
        PanelSpec(
            "Inflight events",
            (Query(f"sum by (instance) (streamkit_inflight_events{{{G}}})", "{{instance}}"),),
            width=9,
        ),
        PanelSpec(
            "Assigned partitions",
            (Query(f"sum by (instance) (streamkit_assigned_partitions{{{G}}})",
                   "{{instance}}"),),
            width=9,
        ),
        PanelSpec(
            "Ready instances",
            (Query(f"sum(streamkit_ready{{{G}}})", "ready"),),
            kind="stat",
            description="Instances that joined the group and hold an assignment.",
            width=6,
        ),
    )),
)  # fmt: skip


def _target(ref_id: str, query: Query) -> prometheus.Dataquery:
    target = (
        prometheus.Dataquery()
        .ref_id(ref_id)
        .expr(query.expr)
        .legend_format(query.legend)
        .datasource(DATASOURCE)
    )
    return target.exemplar(True) if query.exemplars else target


def _timeseries() -> timeseries.Panel:
    legend = (
        common_builder.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["lastNotNull", "max"])
    )
    return timeseries.Panel().legend(legend).fill_opacity(10).line_width(1)


def _stat() -> stat.Panel:
    # Red at 0 ready instances: nothing consumes the group.
    thresholds = (
        dash.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=None, color="red"), Threshold(value=1, color="green")])
    )
    return (
        stat.Panel()
        .thresholds(thresholds)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
    )


def _panel(spec: PanelSpec, panel_id: int) -> timeseries.Panel | stat.Panel:
    panel = _stat() if spec.kind == "stat" else _timeseries()
    panel.id(panel_id).title(spec.title).unit(spec.unit).datasource(DATASOURCE)
    panel.height(8).span(spec.width)
    if spec.description:
        panel.description(spec.description)
    for index, query in enumerate(spec.queries):
        panel.with_target(_target(chr(ord("A") + index), query))
    return panel


def _variables() -> list[dash.DatasourceVariable | dash.QueryVariable]:
    datasource = dash.DatasourceVariable("datasource").label("Data source").type("prometheus")
    group = (
        dash.QueryVariable("group")
        .label("Consumer group")
        .datasource(DATASOURCE)
        .query("label_values(streamkit_assigned_partitions, group)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".+")
    )
    return [datasource, group]


def build() -> dash.Dashboard:
    """Return the dashboard builder with every row and panel."""
    board = (
        dash.Dashboard("streamkit consumers")
        .uid(UID)
        .description("Lag, throughput, latency, retries and health of streamkit consumers.")
        .tags(["streamkit", "kafka"])
        .editable()
        .time("now-3h", "now")
        .refresh("30s")
        .timezone("browser")
    )
    for variable in _variables():
        board.with_variable(variable)
    # Stable ids in table order: Grafana links and alerts refer to panels by id.
    panel_id = 0
    for row in ROWS:
        panel_id += 1
        board.with_row(dash.Row(row.title).id(panel_id))
        for spec in row.panels:
            panel_id += 1
            board.with_panel(_panel(spec, panel_id))
    return board


def render() -> str:
    """Render the dashboard as the committed JSON text (sorted keys, trailing newline)."""
    model = build().build()
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the JSON, or with ``--check`` report whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
