"""Observability: Prometheus metrics on an injected registry and the HTTP probe endpoint."""

from streamkit.observability.http import HealthState, HttpServerHandle, serve_http
from streamkit.observability.metrics import METRIC_NAMES, UNKNOWN_EVENT_TYPE, Metrics

__all__ = [
    "METRIC_NAMES",
    "UNKNOWN_EVENT_TYPE",
    "HealthState",
    "HttpServerHandle",
    "Metrics",
    "serve_http",
]
