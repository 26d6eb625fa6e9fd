"""The scenarios, by the number the issue gives them (``profile`` last)."""

from __future__ import annotations

from collections.abc import Callable

from bench.context import Bench
from bench.model import ScenarioResult
from bench.scenarios import (
    profile,
    s1_throughput,
    s2_io,
    s3_latency,
    s4_failure,
    s5_backlog,
    s6_replay,
    s7_scaleout,
    s8_relay,
    s9_growth,
    s10_registry,
    s11_idempotency,
    s12_tracing,
)

SCENARIOS: dict[str, Callable[[Bench], ScenarioResult]] = {
    "1": s1_throughput.run,
    "2": s2_io.run,
    "3": s3_latency.run,
    "4": s4_failure.run,
    "5": s5_backlog.run,
    "6": s6_replay.run,
    "7": s7_scaleout.run,
    "8": s8_relay.run,
    "9": s9_growth.run,
    "10": s10_registry.run,
    "11": s11_idempotency.run,
    "12": s12_tracing.run,
    "profile": profile.run,
}
ALL = tuple(SCENARIOS)
# --smoke without --scenarios: those that need no other server and no group of processes
# (7: members joining and leaving; 10: a schema registry; 11: PostgreSQL), so that the
# harness check stays under a minute; name them to smoke-test them too.
SMOKE_SKIPS = ("7", "10", "11")
SMOKE_DEFAULT = tuple(n for n in ALL if n not in SMOKE_SKIPS)
