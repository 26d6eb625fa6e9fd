"""Prometheus metrics for streamkit, created on an injected registry.

Nothing is registered at import time: each :class:`Metrics` owns its metrics on the
registry it is given, so tests and embedded apps never collide on the global registry.

All durations are in seconds. Labels are bounded sets only (group, topic, partition,
event type, outcome, error class); never a key, offset or event id, which would grow
the series count with traffic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Literal, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from streamkit.handlers.registry import UNKNOWN_EVENT_TYPE

__all__ = [
    "HANDLER_DURATION_BUCKETS",
    "METRIC_NAMES",
    "PRODUCE_LATENCY_BUCKETS",
    "UNKNOWN_EVENT_TYPE",
    "CommitOutcome",
    "EventOutcome",
    "Metrics",
    "ProduceOutcome",
    "PublishTarget",
    "RebalanceKind",
]

EventOutcome = Literal["ok", "retried", "dead_lettered", "skipped"]
CommitOutcome = Literal["ok", "failed"]
ProduceOutcome = Literal["ok", "failed"]
RebalanceKind = Literal["assigned", "revoked", "lost"]
PublishTarget = Literal["retry", "dlq"]

#: Handler time from 100µs (an in-memory handler) to 30s (a slow downstream call).
HANDLER_DURATION_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

#: Broker ack latency with acks=all: about 1ms on a local broker, seconds when degraded.
PRODUCE_LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

#: Sample-family names as Prometheus shows them (counters with ``_total``, histograms by
#: their base name, whose series add ``_bucket``, ``_count`` and ``_sum``).
METRIC_NAMES: frozenset[str] = frozenset(
    {
        "streamkit_consumer_lag",
        "streamkit_consumer_lag_seconds",
        "streamkit_events_total",
        "streamkit_handler_duration_seconds",
        "streamkit_inflight_events",
        "streamkit_retries_total",
        "streamkit_dead_letter_total",
        "streamkit_decode_errors_total",
        "streamkit_dependency_waits_total",
        "streamkit_waiting_on_dependency",
        "streamkit_commits_total",
        "streamkit_rebalances_total",
        "streamkit_assigned_partitions",
        "streamkit_ready",
        "streamkit_produced_total",
        "streamkit_produce_latency_seconds",
        "streamkit_publish_failures_total",
        "streamkit_dead_letter_values_dropped_total",
        "streamkit_transactions_total",
        "streamkit_transaction_duration_seconds",
        "streamkit_duplicates_skipped_total",
        "streamkit_dedupe_store_errors_total",
    }
)

_M = TypeVar("_M", bound=MetricWrapperBase)

_COMMIT_OUTCOMES: tuple[CommitOutcome, ...] = ("ok", "failed")
_REBALANCE_KINDS: tuple[RebalanceKind, ...] = ("assigned", "revoked", "lost")
_PUBLISH_TARGETS: tuple[PublishTarget, ...] = ("retry", "dlq")
_PRODUCE_OUTCOMES: tuple[ProduceOutcome, ...] = ("ok", "failed")
_EVENT_OUTCOMES: tuple[EventOutcome, ...] = ("ok", "skipped", "retried", "dead_lettered")
# What bad input is dead-lettered as: known before any error, so its series exist from start.
_STREAMKIT_ERROR_TYPES = ("DecodeError", "SchemaError", "UnknownEventType")


class Metrics:
    """Every streamkit metric, registered on one registry.

    Attributes are the prometheus_client metric objects (``consumer_lag``, ``events``, ...).
    The ``*_child`` helpers return cached labelled children for the hot path, where a
    ``.labels()`` lookup per batch would cost more than the increment itself.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # A fresh registry by default: never the process-global one by accident.
        self.registry = registry if registry is not None else CollectorRegistry()
        self._children: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}
        self._create_consumer_metrics()
        self._create_event_metrics()
        self._create_producer_metrics()

    def _create_consumer_metrics(self) -> None:
        reg = self.registry
        partition_labels = ("group", "topic", "partition")
        self.consumer_lag = Gauge(
            "streamkit_consumer_lag",
            "Partition end offset minus committed offset, in messages.",
            partition_labels,
            registry=reg,
        )
        self.consumer_lag_seconds = Gauge(
            "streamkit_consumer_lag_seconds",
            "Age of the oldest event not yet done on the partition; 0 when caught up.",
            partition_labels,
            registry=reg,
        )
        self.inflight = Gauge(
            "streamkit_inflight_events",
            "Events handed to handlers and not yet done.",
            ("group",),
            registry=reg,
        )
        self.commits = Counter(
            "streamkit_commits", "Offset commits by outcome.", ("group", "outcome"), registry=reg
        )
        self.rebalances = Counter(
            "streamkit_rebalances",
            "Rebalance callbacks by kind (assigned, revoked, lost).",
            ("group", "kind"),
            registry=reg,
        )
        self.assigned_partitions = Gauge(
            "streamkit_assigned_partitions",
            "Partitions currently assigned to this consumer.",
            ("group",),
            registry=reg,
        )
        self.ready = Gauge(
            "streamkit_ready",
            "1 when the consumer joined its group and received an assignment, else 0.",
            ("group",),
            registry=reg,
        )

    def _create_event_metrics(self) -> None:
        reg = self.registry
        self.events = Counter(
            "streamkit_events",
            "Events finished, by outcome (ok, retried, dead_lettered, skipped).",
            ("group", "topic", "event_type", "outcome"),
            registry=reg,
        )
        self.handler_duration = Histogram(
            "streamkit_handler_duration_seconds",
            "Handler run time in seconds, including validation.",
            ("event_type",),
            buckets=HANDLER_DURATION_BUCKETS,
            registry=reg,
        )
        self.retries = Counter(
            "streamkit_retries",
            "Events sent to a retry tier.",
            ("group", "event_type"),
            registry=reg,
        )
        self.dead_letters = Counter(
            "streamkit_dead_letter",
            "Events sent to the dead-letter topic, by exception class.",
            ("group", "error_type"),
            registry=reg,
        )
        self.duplicates_skipped = Counter(
            "streamkit_duplicates_skipped",
            "Events not handed to their handler: their dedupe key was handled already.",
            ("group", "topic", "event_type"),
            registry=reg,
        )
        self.dedupe_store_errors = Counter(
            "streamkit_dedupe_store_errors",
            "Dedupe store operations that failed (store down): the event is held and retried.",
            ("group", "store"),
            registry=reg,
        )
        self.decode_errors = Counter(
            "streamkit_decode_errors",
            "Records whose envelope could not be decoded.",
            ("group", "topic"),
            registry=reg,
        )
        self.dependency_waits = Counter(
            "streamkit_dependency_waits",
            "Times an event was held because a service it needs (schema registry, ...) did "
            "not answer; held events are tried again, never dead-lettered.",
            ("group", "dependency"),
            registry=reg,
        )
        self.waiting_on_dependency = Gauge(
            "streamkit_waiting_on_dependency",
            "Events held now, waiting on a service that does not answer; their offsets "
            "are not committed.",
            ("group", "dependency"),
            registry=reg,
        )

    def _create_producer_metrics(self) -> None:
        reg = self.registry
        self.produced = Counter(
            "streamkit_produced",
            "Produced records by delivery outcome.",
            ("outcome",),
            registry=reg,
        )
        self.produce_latency = Histogram(
            "streamkit_produce_latency_seconds",
            "Delivery latency from send to broker acknowledgement, in seconds.",
            buckets=PRODUCE_LATENCY_BUCKETS,
            registry=reg,
        )
        self.publish_failures = Counter(
            "streamkit_publish_failures",
            "Retry or DLQ publishes that failed; the source offset stays uncommitted.",
            ("group", "target"),
            registry=reg,
        )
        self.values_dropped = Counter(
            "streamkit_dead_letter_values_dropped",
            "Dead letters written without their value: too large for the DLQ even with shrunk "
            "headers. The original stays in its source topic (see the original-* headers).",
            ("group",),
            registry=reg,
        )

        self.transactions = Counter(
            "streamkit_transactions",
            "Exactly-once mode: transactions ended, by outcome (committed, aborted).",
            ("group", "outcome"),
            registry=reg,
        )
        self.transaction_duration = Histogram(
            "streamkit_transaction_duration_seconds",
            "Exactly-once mode: from begin_transaction to its commit or abort, in seconds.",
            ("group",),
            buckets=PRODUCE_LATENCY_BUCKETS,
            registry=reg,
        )

    def prime(
        self, group: str, topics: Iterable[str] = (), event_types: Iterable[str] = ()
    ) -> None:
        """Create the zero-valued series of every label set known at start for ``group``.

        A counter series that first appears with value 1 shows no ``increase()`` in
        Prometheus, so the first commit or publish failure would never alert; and a panel
        or alert on a series that does not exist yet sees nothing at all. ``topics`` (the
        source topics) and ``event_types`` (the handlers' labels) prime the event series.
        """
        self._prime_events(group, tuple(topics), tuple(event_types))
        for commit_outcome in _COMMIT_OUTCOMES:
            self.commits.labels(group, commit_outcome)
        for kind in _REBALANCE_KINDS:
            self.rebalances.labels(group, kind)
        for target in _PUBLISH_TARGETS:
            self.publish_failures.labels(group, target)
        for produce_outcome in _PRODUCE_OUTCOMES:
            self.produced.labels(produce_outcome)
        self.values_dropped.labels(group)
        for txn_outcome in ("committed", "aborted"):
            self.transactions.labels(group, txn_outcome)
        self.transaction_duration.labels(group)
        self.inflight.labels(group).set(0)
        self.assigned_partitions.labels(group).set(0)
        self.ready.labels(group).set(0)

    def _prime_events(self, group: str, topics: tuple[str, ...], types: tuple[str, ...]) -> None:
        for topic in topics:
            self.decode_errors.labels(group, topic)
            for event_type in types:
                self.duplicates_skipped.labels(group, topic, event_type)
            for event_type in (*types, UNKNOWN_EVENT_TYPE):  # bad input counts as unknown
                for outcome in _EVENT_OUTCOMES:
                    self.events.labels(group, topic, event_type, outcome)
        for event_type in types:
            self.handler_duration.labels(event_type)
            self.retries.labels(group, event_type)
        for error_type in _STREAMKIT_ERROR_TYPES:
            self.dead_letters.labels(group, error_type)

    def child(self, metric: _M, *labelvalues: str) -> _M:
        """Return ``metric.labels(*labelvalues)``, cached for this Metrics instance."""
        key = (id(metric), labelvalues)
        found = self._children.get(key)
        if found is None:
            found = metric.labels(*labelvalues)
            self._children[key] = found
        return found  # type: ignore[return-value]

    def events_child(
        self, group: str, topic: str, event_type: str, outcome: EventOutcome
    ) -> Counter:
        """Cached ``events`` child; pass :data:`UNKNOWN_EVENT_TYPE` for unrouted events."""
        return self.child(self.events, group, topic, event_type, outcome)

    def handler_duration_child(self, event_type: str) -> Histogram:
        """Cached ``handler_duration`` child for one event type."""
        return self.child(self.handler_duration, event_type)

    def set_partition_lag(
        self, group: str, topic: str, partition: int, lag: int, lag_seconds: float
    ) -> None:
        """Set both lag gauges of one partition."""
        labels = (group, topic, str(partition))
        self.child(self.consumer_lag, *labels).set(lag)
        self.child(self.consumer_lag_seconds, *labels).set(lag_seconds)

    def forget_partition(self, group: str, topic: str, partition: int) -> None:
        """Drop the lag series of a partition this consumer no longer owns.

        Without this a revoked partition keeps reporting its last lag from this
        instance, and lag alerts fire for a partition another member has caught up.
        """
        labels = (group, topic, str(partition))
        for gauge in (self.consumer_lag, self.consumer_lag_seconds):
            self._children.pop((id(gauge), labels), None)
            # prometheus-client < 0.21 raises KeyError for a series it never had.
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
