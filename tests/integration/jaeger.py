"""A real trace backend for the end-to-end tracing tests: Jaeger from scripts/jaeger-local.

Given by ``STREAMKIT_TEST_OTLP`` and ``STREAMKIT_TEST_JAEGER`` (OTLP/HTTP endpoint, query
URL) if both are set, else started (and stopped again) with ``scripts/jaeger-local``. The
binary is built once per machine (``make test`` builds it before pytest). With no
Jaeger, the tests fail under CI (``CI=true``) and skip locally, as for Kafka.
"""

from __future__ import annotations

import os
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from tests.conftest import IN_CI, ROOT

SCRIPT = str(ROOT / "scripts" / "jaeger-local")


@dataclass(frozen=True)
class Jaeger:
    """Where to send spans (OTLP/HTTP) and where to read traces back."""

    otlp: str
    query: str

    def get(self, path: str, **params: Any) -> Any:
        url = f"{self.query}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as resp:
            return orjson.loads(resp.read())

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """The trace as Jaeger's query API returns it, or None before it arrived."""
        try:
            data = self.get(f"/api/traces/{trace_id}")["data"]
        except OSError:  # 404 until the first span of the trace is stored
            return None
        return data[0] if data else None

    def traces(self, service: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.get("/api/traces", service=service, limit=50)["data"]
        return data


def _script(command: str) -> subprocess.CompletedProcess[str]:
    # The first start on a machine builds the binary: minutes, not seconds.
    return subprocess.run(
        [SCRIPT, command], capture_output=True, text=True, timeout=1200, check=False
    )


@pytest.fixture(scope="session")
def jaeger() -> Iterator[Jaeger]:
    """A running Jaeger for the whole session."""
    otlp, query = os.environ.get("STREAMKIT_TEST_OTLP"), os.environ.get("STREAMKIT_TEST_JAEGER")
    if otlp and query:
        yield Jaeger(otlp, query)
        return
    was_running = _script("status").returncode == 0
    started = _script("start")
    if started.returncode != 0:
        reason = f"scripts/jaeger-local start failed: {started.stderr.strip()[-500:]}"
        if IN_CI:
            pytest.fail(f"no Jaeger for the tracing tests: {reason}", pytrace=False)
        pytest.skip(f"no Jaeger: {reason}")
    lines = dict(line.split("=", 1) for line in started.stdout.split())
    yield Jaeger(lines["OTEL_EXPORTER_OTLP_ENDPOINT"], lines["JAEGER_QUERY_URL"])
    if not was_running:
        _script("stop")
