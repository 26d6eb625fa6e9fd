"""Tests for streamkit.observability.metrics."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from streamkit.observability.metrics import (
    HANDLER_DURATION_BUCKETS,
    METRIC_NAMES,
    UNKNOWN_EVENT_TYPE,
    Metrics,
)

# Label names are the contract with dashboards and alert rules.
EXPECTED_LABELS: dict[str, tuple[str, ...]] = {
    "streamkit_consumer_lag": ("group", "topic", "partition"),
    "streamkit_consumer_lag_seconds": ("group", "topic", "partition"),
    "streamkit_events_total": ("group", "topic", "event_type", "outcome"),
    "streamkit_handler_duration_seconds": ("event_type",),
    "streamkit_inflight_events": ("group",),
    "streamkit_retries_total": ("group", "event_type"),
    "streamkit_dead_letter_total": ("group", "error_type"),
    "streamkit_decode_errors_total": ("group", "topic"),
    "streamkit_dependency_waits_total": ("group", "dependency"),
    "streamkit_waiting_on_dependency": ("group", "dependency"),
    "streamkit_commits_total": ("group", "outcome"),
    "streamkit_rebalances_total": ("group", "kind"),
    "streamkit_assigned_partitions": ("group",),
    "streamkit_ready": ("group",),
    "streamkit_produced_total": ("outcome",),
    "streamkit_produce_latency_seconds": (),
    "streamkit_publish_failures_total": ("group", "target"),
    "streamkit_dead_letter_values_dropped_total": ("group",),
    "streamkit_transactions_total": ("group", "outcome"),
    "streamkit_transaction_duration_seconds": ("group",),
    "streamkit_duplicates_skipped_total": ("group", "topic", "event_type"),
    "streamkit_dedupe_store_errors_total": ("group", "store"),
}


def _family_name(name: str, kind: str | None) -> str:
    """Name as Prometheus shows it: prometheus_client strips ``_total`` from counters."""
    return f"{name}_total" if kind == "counter" else name


def _exposed(registry: CollectorRegistry) -> dict[str, str]:
    return {_family_name(m.name, m.type): m.type for m in registry.collect()}


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_registers_exactly_metric_names() -> None:
    assert set(_exposed(Metrics().registry)) == METRIC_NAMES


def test_metric_names_match_label_contract() -> None:
    assert set(EXPECTED_LABELS) == METRIC_NAMES


@pytest.mark.parametrize(("name", "labels"), sorted(EXPECTED_LABELS.items()))
def test_label_names(name: str, labels: tuple[str, ...]) -> None:
    metrics = Metrics()
    by_name = {
        _family_name(collector._name, collector._type): collector
        for collector in vars(metrics).values()
        if isinstance(collector, MetricWrapperBase)
    }
    assert by_name[name]._labelnames == labels


def test_nothing_on_global_registry() -> None:
    before = set(REGISTRY._names_to_collectors)
    Metrics()
    Metrics()
    assert set(REGISTRY._names_to_collectors) == before


def test_uses_given_registry() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    assert metrics.registry is registry
    with pytest.raises(ValueError, match="Duplicated"):
        Metrics(registry)


def test_events_child_is_cached_and_counts() -> None:
    metrics = Metrics()
    child = metrics.events_child("g", "orders", "order.created", "ok")
    assert metrics.events_child("g", "orders", "order.created", "ok") is child
    child.inc(3)
    metrics.events_child("g", "orders", UNKNOWN_EVENT_TYPE, "dead_lettered").inc()
    reg = metrics.registry
    labels = {"group": "g", "topic": "orders"}
    ok = _sample(reg, "streamkit_events_total", **labels, event_type="order.created", outcome="ok")
    unknown = _sample(
        reg, "streamkit_events_total", **labels, event_type="__unknown__", outcome="dead_lettered"
    )
    assert (ok, unknown) == (3, 1)


def test_child_cache_is_per_metric() -> None:
    metrics = Metrics()
    assert metrics.child(metrics.inflight, "g") is not metrics.child(metrics.ready, "g")


def test_handler_duration_in_seconds() -> None:
    metrics = Metrics()
    metrics.handler_duration_child("order.created").observe(0.0002)
    reg = metrics.registry
    bucket = "streamkit_handler_duration_seconds_bucket"
    assert _sample(reg, bucket, event_type="order.created", le="0.00025") == 1
    assert _sample(reg, bucket, event_type="order.created", le="0.0001") == 0
    assert HANDLER_DURATION_BUCKETS[0] == pytest.approx(0.0001)
    assert HANDLER_DURATION_BUCKETS[-1] == 30


def test_partition_lag_set_and_forget() -> None:
    metrics = Metrics()
    metrics.set_partition_lag("g", "orders", 3, lag=42, lag_seconds=1.5)
    reg = metrics.registry
    labels = {"group": "g", "topic": "orders", "partition": "3"}
    assert _sample(reg, "streamkit_consumer_lag", **labels) == 42
    assert _sample(reg, "streamkit_consumer_lag_seconds", **labels) == 1.5
    metrics.forget_partition("g", "orders", 3)
    metrics.forget_partition("g", "orders", 3)  # idempotent: revoke then lost
    assert _sample(reg, "streamkit_consumer_lag", **labels) is None
    assert _sample(reg, "streamkit_consumer_lag_seconds", **labels) is None
    metrics.set_partition_lag("g", "orders", 3, lag=1, lag_seconds=0)
    assert _sample(reg, "streamkit_consumer_lag", **labels) == 1


def test_prime_creates_zero_series() -> None:
    metrics = Metrics()
    metrics.prime("g")
    reg = metrics.registry
    assert _sample(reg, "streamkit_commits_total", group="g", outcome="failed") == 0
    assert _sample(reg, "streamkit_publish_failures_total", group="g", target="dlq") == 0
    assert _sample(reg, "streamkit_rebalances_total", group="g", kind="lost") == 0
    assert _sample(reg, "streamkit_produced_total", outcome="failed") == 0
    assert _sample(reg, "streamkit_ready", group="g") == 0


def test_exposition_parses() -> None:
    metrics = Metrics()
    metrics.prime("g")
    metrics.produce_latency.observe(0.003)
    text = generate_latest(metrics.registry).decode()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"streamkit_commits", "streamkit_produce_latency_seconds"} <= names


def test_observe_many_matches_observe_one_by_one() -> None:
    from prometheus_client import CollectorRegistry, Histogram

    from streamkit.observability.stats import observe_many

    values = [0.00005, 0.0001, 0.003, 0.003, 0.7, 2.0, 31.0, 1e9]
    registries = CollectorRegistry(), CollectorRegistry()
    one = Histogram("h", "h", buckets=(0.0001, 0.003, 1.0, 30.0), registry=registries[0])
    many = Histogram("h", "h", buckets=(0.0001, 0.003, 1.0, 30.0), registry=registries[1])
    for v in values:
        one.observe(v)
    observe_many(many, values)
    samples = [
        [
            (s.name, s.labels, s.value)
            for s in next(iter(r.collect())).samples
            if s.name != "h_created"
        ]
        for r in registries
    ]
    assert samples[0] == samples[1]


def test_batch_stats_ok_times_are_counted_ok_and_observed_beside_an_exemplar() -> None:
    from streamkit.observability.stats import EXEMPLAR_TRACE_ID, BatchStats

    metrics = Metrics()
    stats = BatchStats(metrics, "g")
    stats.ok_times[("orders", "order.created")].append(0.0002)  # the hot path's way
    token = EXEMPLAR_TRACE_ID.set("ab" * 16)  # inside a traced handler's scope
    try:
        stats.count("orders", "order.created", "ok")
        stats.duration("order.created", 0.0002)
    finally:
        EXEMPLAR_TRACE_ID.reset(token)
    assert [t for _, t in stats._exemplars.values()] == ["ab" * 16]  # the traced run's
    stats.flush()
    reg = metrics.registry
    labels = {"group": "g", "topic": "orders", "event_type": "order.created", "outcome": "ok"}
    assert _sample(reg, "streamkit_events_total", **labels) == 2
    count = "streamkit_handler_duration_seconds_count"
    assert _sample(reg, count, event_type="order.created") == 2
    stats.flush()  # flushed once: nothing is counted twice
    assert _sample(reg, "streamkit_events_total", **labels) == 2
