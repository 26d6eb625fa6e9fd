"""Metrics, dashboard, alerts and probes proven together on a real broker and Prometheus.

A real ``prometheus`` scrapes a ``streamkit run`` service every second and evaluates
deploy/prometheus/alerts.yml; every dashboard target and alert expression must then
answer through the HTTP API. The probes are checked against the same ``streamkit run``.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from streamkit.admin import connect, ensure_topics
from tests.deploy_queries import ALERTS_PATH, all_queries
from tests.integration.helpers import (
    Service,
    produce_events,
    produce_raw,
    read_lines,
    wait_until,
)
from tests.integration.prom import PrometheusServer, prometheus_binary
from tests.integration.services import observed

pytestmark = pytest.mark.kafka
OBSERVED = "tests.integration.services.observed"
RECORDER = "tests.integration.services.recorder"

HELD = 12  # events held at the head of the partitions until the gate opens
OK = 200
FLAKY_ONCE = 10  # fail once, succeed from the retry tier
FLAKY_ALWAYS = 10  # fail twice, dead-lettered as FlakyError
# Bad input: dead-lettered at once and counted as decode errors.
BAD_RECORDS: list[tuple[bytes | None, bytes | None, Any]] = [
    (b"bad-1", b"{not json", [("event_type", b"obs.ok")]),
    (b"bad-2", b"", None),
    (b"bad-3", b'{"no": "event type"}', None),
]


def http_get(port: int, path: str) -> tuple[int, str]:
    """Status and body of a probe (0 and "" while nothing listens)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _backlog() -> list[tuple[str, object, str]]:
    events: list[tuple[str, object, str]] = [("obs.held", {"i": i}, f"h{i}") for i in range(HELD)]
    events += [("obs.ok", {"i": i}, f"k{i % 20}") for i in range(OK)]
    events += [("obs.flaky", {"fail": "once"}, f"f{i}") for i in range(FLAKY_ONCE)]
    events += [("obs.flaky", {"fail": "always"}, f"a{i}") for i in range(FLAKY_ALWAYS)]
    events.append(("obs.unknown", {}, "u"))  # no handler: dead-lettered as UnknownEventType
    return events


def _ensure_failure_topics(bootstrap: str, topic: str, group: str) -> None:
    names = observed.router.derived_topics([topic], group)

    def create() -> bool:
        admin, metadata = connect({"bootstrap.servers": bootstrap}, 30)
        if topic not in metadata.topics:
            return False  # the new source topic is not in the metadata yet
        ensure_topics(admin, metadata, names)
        return True

    wait_until(create, 30, f"retry/DLQ topics of {topic}", every=0.2)


def _poll(
    prom: PrometheusServer, expr: str, ok: Callable[[list[Any]], bool], timeout: float
) -> Any:
    """Run ``expr`` until ``ok(vector)``; return the vector (bounded by ``timeout``)."""
    last: list[Any] = []

    def check() -> bool:
        nonlocal last
        last = prom.vector(expr)
        return ok(last)

    try:
        wait_until(check, timeout, expr, every=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last answer: {last}") from None
    return last


def _unanswered(prom: PrometheusServer, group: str, timeout: float) -> list[str]:
    """Every shipped query that does not answer as required within ``timeout``.

    Dashboard targets (and recording rules) must return series; an alert expression
    returns nothing while it does not fire, so it only has to evaluate without error.
    """
    pending = dict(all_queries(group=group))
    answers: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for source, expr in list(pending.items()):
            answer = prom.query(expr)
            answers[source] = answer
            empty_ok = source.startswith("alert:")
            if answer["status"] == "success" and (empty_ok or answer["data"]["result"]):
                del pending[source]
        if pending:
            time.sleep(1)
    return [f"{source}: {pending[source]!r} -> {answers.get(source)}" for source in pending]


def _labels(vector: list[tuple[dict[str, str], float]], name: str) -> set[str]:
    return {labels.get(name, "") for labels, _ in vector}


@pytest.mark.timeout(150)
def test_every_dashboard_and_alert_query_answers_on_a_real_prometheus(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    prometheus_binary()  # skips (locally) before a service is started and left running
    topic = make_topic("observed", partitions=3)
    group = f"g-{unique}"
    _ensure_failure_topics(kafka_bootstrap, topic, group)
    # The whole backlog is there before the service starts; the held events at the head
    # of the partitions keep the committed offsets (so the lag) where they are.
    produce_events(kafka_bootstrap, topic, _backlog())
    produce_raw(kafka_bootstrap, topic, BAD_RECORDS)
    gate = tmp_path / "gate"
    service = Service(
        OBSERVED,
        bootstrap=kafka_bootstrap,
        group=group,
        topics=[topic],
        out=tmp_path / "observed.txt",
        env={"OBSERVED_GATE": str(gate)},
    )
    prom = PrometheusServer(tmp_path / "prom", [f"127.0.0.1:{service.port}"], [ALERTS_PATH])
    try:
        prom.wait_ready()
        service.wait_ready()
        own = f'group="{group}",topic="{topic}"'
        # The lag gauges refresh every LAG_REFRESH (5 s): seen above 0 while held...
        _poll(prom, f"streamkit_consumer_lag{{{own}}} > 0", bool, 30)
        _poll(prom, f"streamkit_consumer_lag_seconds{{{own}}} > 0", bool, 15)
        gate.touch()
        # ...and at 0 on every partition of every consumed topic once drained.
        lag = _poll(
            prom,
            f'streamkit_consumer_lag{{group="{group}"}}',
            lambda v: (
                len([s for s in v if s[0]["topic"] == topic]) == 3
                and all(value == 0 for _, value in v)
            ),
            40,
        )
        assert {labels["topic"] for labels, _ in lag} == {topic, f"{topic}.{group}.retry.1"}
        unanswered = _unanswered(prom, group, timeout=30)
        assert not unanswered, "queries without data:\n" + "\n".join(unanswered)

        outcomes = _poll(
            prom,
            f'sum by (outcome) (streamkit_events_total{{group="{group}"}})',
            lambda v: {"ok", "retried", "dead_lettered"} <= _labels(v, "outcome"),
            10,
        )
        by_outcome = {labels["outcome"]: value for labels, value in outcomes}
        assert by_outcome["ok"] == HELD + OK + FLAKY_ONCE
        assert by_outcome["retried"] == FLAKY_ONCE + FLAKY_ALWAYS
        assert by_outcome["dead_lettered"] == FLAKY_ALWAYS + 1 + len(BAD_RECORDS)
        dead = prom.vector(f'streamkit_dead_letter_total{{group="{group}"}}')
        assert {"FlakyError", "DecodeError", "UnknownEventType"} <= _labels(dead, "error_type")
        _assert_rules_evaluate(prom)
    finally:
        prom.close()
        assert service.stop() == 0


def _assert_rules_evaluate(prom: PrometheusServer) -> None:
    """Prometheus loaded alerts.yml and evaluates every rule without error."""

    def rules() -> list[dict[str, Any]]:
        answer = prom.api("rules")
        groups = answer["data"]["groups"] if answer["status"] == "success" else []
        found = [rule for g in groups for rule in g["rules"]]
        return found if found and all(r["health"] != "unknown" for r in found) else []

    loaded = wait_until(rules, 15, "alert rules to be evaluated", every=0.5)
    assert len(loaded) == len([s for s, _ in all_queries() if not s.startswith("dashboard:")])
    broken = [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"]
    assert not broken, broken


@pytest.mark.timeout(90)
def test_readyz_is_503_before_the_assignment_and_200_after(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    topic = make_topic("ready", partitions=1)
    group = f"g-{unique}"
    # A static member that closes sends no LeaveGroup: the group waits for it to come
    # back until its session times out, so the service cannot get an assignment before.
    holder = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group,
            "group.instance.id": f"holder-{unique}",
            "session.timeout.ms": 8000,
            "partition.assignment.strategy": "range",  # streamkit's default: one protocol
        }
    )
    holder.subscribe([topic])
    wait_until(lambda: holder.poll(0.1) is None and holder.assignment(), 30, "holder assigned")
    holder.close()
    service = Service(
        RECORDER,
        bootstrap=kafka_bootstrap,
        group=group,
        topics=[topic],
        out=tmp_path / "handled.txt",
        env={"STREAMKIT_CHECK_TOPICS": "false"},
    )
    try:
        status, reason = wait_until(
            lambda: (answer := http_get(service.port, "/readyz"))[0] and answer, 30, "/readyz"
        )
        assert (status, reason) == (503, "not ready: no partition assignment yet\n")
        assert http_get(service.port, "/healthz") == (200, "ok\n")
        service.wait_ready(30)
        assert http_get(service.port, "/readyz") == (200, "ok\n")
    finally:
        assert service.stop() == 0


@pytest.mark.timeout(90)
def test_healthz_is_503_while_the_poll_loop_is_blocked(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    topic = make_topic("stall", partitions=1)
    out = tmp_path / "handled.txt"
    service = Service(
        RECORDER,
        bootstrap=kafka_bootstrap,
        group=f"g-{unique}",
        topics=[topic],
        out=out,
        env={"STREAMKIT_CHECK_TOPICS": "false", "STREAMKIT_STALL_AFTER": "1"},
    )
    try:
        service.wait_ready()
        assert http_get(service.port, "/healthz") == (200, "ok\n")
        # A sync handler runs inline on the loop: while it sleeps, nothing polls.
        produce_events(kafka_bootstrap, topic, [("order.block", {"seconds": 5}, "k")])
        _, reason = wait_until(
            lambda: (answer := http_get(service.port, "/healthz"))[0] == 503 and answer,
            10,
            "/healthz to report the stall",
        )
        assert reason.startswith("poll loop stalled for "), reason
        assert not read_lines(out)  # still blocked: the stall was seen while it lasted
        wait_until(lambda: read_lines(out), 15, "the blocking handler to return")
        wait_until(lambda: http_get(service.port, "/healthz") == (200, "ok\n"), 10, "healthy again")
    finally:
        assert service.stop() == 0
