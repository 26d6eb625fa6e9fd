"""Every dashboard and alert query has a series from the first scrape, before any event."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.deploy_queries import all_queries, referenced_metrics
from tests.integration.helpers import Service, ensure_failure_topics, wait_until
from tests.integration.prom import PrometheusServer, prometheus_binary
from tests.integration.services.traced import router
from tests.integration.test_observability import ALERTS_PATH, _unanswered

pytestmark = pytest.mark.kafka


@pytest.mark.timeout(90)
def test_every_query_answers_within_seconds_of_start_up_before_any_event(
    kafka_bootstrap: str, make_topic: Any, unique: str, tmp_path: Path
) -> None:
    prometheus_binary()  # skips (locally) before a service is started and left running
    topic, group = make_topic("quiet", partitions=2), f"g-{unique}"
    ensure_failure_topics(kafka_bootstrap, router, topic, group)
    service = Service(
        "tests.integration.services.traced",
        bootstrap=kafka_bootstrap,
        group=group,
        topics=[topic],
        out=tmp_path / "quiet",
    )
    prom = PrometheusServer(tmp_path / "prom", [f"127.0.0.1:{service.port}"], [ALERTS_PATH])
    try:
        prom.wait_ready()
        service.wait_ready()
        first = _first_scrape_after(prom, time.time())
        # Every series a query selects is in that one scrape (lag, errors, durations: 0s).
        missing = _missing_series(prom, group, at=first)
        assert not missing, f"not in the first scrape after start-up: {sorted(missing)}"
        # rate() needs a second sample: the expressions answer by the next successful scrape.
        unanswered = _unanswered(prom, group, timeout=10)
        assert not unanswered, "queries without data:\n" + "\n".join(unanswered)
    finally:
        prom.close()
        assert service.stop() == 0


def _first_scrape_after(prom: PrometheusServer, since: float) -> float:
    """The time of the service's first successful scrape that began after ``since``.

    Successful, not merely first: on a loaded machine (CI builds Jaeger on one core while
    the suite runs) a scrape can overrun its 1 s timeout, and a failed scrape stores no
    samples. The series must then be in the next scrape that succeeds; a scrape that keeps
    failing fails the test with Prometheus' own error.
    """
    found: list[float] = []
    errors: list[str] = []

    def scraped() -> bool:
        targets = prom.api("targets").get("data", {}).get("activeTargets", [])
        if not targets:
            return False  # not discovered yet
        [target] = targets
        when = datetime.fromisoformat(target["lastScrape"]).timestamp()
        if target["health"] != "up" and target.get("lastError"):
            errors.append(f"{target['lastScrape']}: {target['lastError']}")
        found[:] = [when]
        return target["health"] == "up" and when >= since

    try:
        wait_until(scraped, 20, "a successful scrape after start-up", every=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; scrape errors: {sorted(set(errors))[-5:]}") from None
    return found[0]


def _missing_series(prom: PrometheusServer, group: str, at: float) -> set[str]:
    """Metric names the shipped queries select (recording rules aside) that had no sample
    at time ``at``; a query with a ``vector(0)`` fallback answers 0 without them."""
    wanted: set[str] = set()
    for _, expr in all_queries(group=group):
        if "vector(0)" in expr:
            continue  # label values unknown at start (a dependency's name): 0 by the query
        wanted |= {m for m in referenced_metrics(expr) if m.startswith("streamkit_")}
    answer = prom.api(
        "query", query='count by (__name__)({__name__=~"streamkit_.+"})', time=f"{at + 0.01:.3f}"
    )
    assert answer["status"] == "success", answer
    present = {series["metric"]["__name__"] for series in answer["data"]["result"]}
    return wanted - present
