"""Tests for streamkit.observability.http: HealthState and the probe/metrics endpoint."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamkit.observability import HealthState, HttpServerHandle, Metrics, serve_http


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(clock: FakeClock) -> HealthState:
    return HealthState(stall_after=60, start_grace=30, clock=clock)


def test_healthy_during_start_grace(health: HealthState, clock: FakeClock) -> None:
    clock.now += 29
    assert health.healthz() == (True, "ok")


def test_unhealthy_without_beat_after_grace(health: HealthState, clock: FakeClock) -> None:
    clock.now += 31
    assert health.healthz() == (False, "poll loop has not started after 31.0s")


def test_stall_detected(health: HealthState, clock: FakeClock) -> None:
    health.beat()
    clock.now += 60
    assert health.healthz() == (True, "ok")
    clock.now += 13.2
    assert health.healthz() == (False, "poll loop stalled for 73.2s")
    health.beat()
    assert health.healthz() == (True, "ok")


def test_failed_overrides_beat(health: HealthState) -> None:
    health.beat()
    health.set_ready(True)
    health.set_failed("producer fatal error")
    assert health.healthz() == (False, "failed: producer fatal error")
    assert health.readyz() == (False, "failed: producer fatal error")


def test_readiness(health: HealthState, clock: FakeClock) -> None:
    health.beat()
    assert health.readyz() == (False, "not ready: no partition assignment yet")
    health.set_ready(True)
    assert health.readyz() == (True, "ok")
    health.set_ready(False, "rebalancing")
    assert health.readyz() == (False, "rebalancing")
    health.set_ready(True)
    clock.now += 61
    assert health.readyz() == (False, "poll loop stalled for 61.0s")


def test_default_grace_equals_stall_after(clock: FakeClock) -> None:
    state = HealthState(stall_after=5, clock=clock)
    clock.now += 5
    assert state.healthz()[0]
    clock.now += 1
    assert not state.healthz()[0]


@pytest.fixture
def metrics() -> Metrics:
    metrics = Metrics()
    metrics.prime("orders-svc")
    return metrics


@pytest.fixture
def server(metrics: Metrics, health: HealthState) -> Iterator[HttpServerHandle]:
    handle = serve_http(0, metrics.registry, health, host="127.0.0.1")
    yield handle
    handle.close()


def _get(handle: HttpServerHandle, path: str, accept: str | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{handle.port}{path}")
    if accept:
        request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read().decode()


def test_binds_ephemeral_port(server: HttpServerHandle) -> None:
    assert server.port > 0


def test_metrics_endpoint(server: HttpServerHandle, metrics: Metrics) -> None:
    metrics.events_child("orders-svc", "orders", "order.created", "ok").inc(2)
    status, content_type, body = _get(server, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    samples = {
        (sample.name, sample.labels.get("outcome")): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }
    assert samples[("streamkit_events_total", "ok")] == 2
    assert samples[("streamkit_ready", None)] == 0


def test_metrics_openmetrics_negotiated(server: HttpServerHandle) -> None:
    status, content_type, body = _get(server, "/metrics", accept="application/openmetrics-text")
    assert status == 200
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")


def test_probes_reflect_state(server: HttpServerHandle, health: HealthState) -> None:
    health.beat()
    assert _get(server, "/healthz")[::2] == (200, "ok\n")
    assert _get(server, "/readyz")[::2] == (503, "not ready: no partition assignment yet\n")
    health.set_ready(True)
    assert _get(server, "/readyz")[::2] == (200, "ok\n")
    health.set_failed("boom")
    assert _get(server, "/healthz")[::2] == (503, "failed: boom\n")


def test_unknown_path_is_404(server: HttpServerHandle) -> None:
    assert _get(server, "/nope")[0] == 404


def test_no_request_logging(
    server: HttpServerHandle, health: HealthState, capfd: pytest.CaptureFixture[str]
) -> None:
    health.beat()
    _get(server, "/healthz")
    _get(server, "/nope")
    assert capfd.readouterr().err == ""


def test_close_releases_port(metrics: Metrics, health: HealthState) -> None:
    with serve_http(0, metrics.registry, health, host="127.0.0.1") as handle:
        port = handle.port
        assert _get(handle, "/healthz")[0] == 200
    # The same port can be bound again once closed.
    again = serve_http(port, metrics.registry, health, host="127.0.0.1")
    again.close()
