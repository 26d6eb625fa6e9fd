"""12. What tracing costs: scenarios 1 and 2 with OpenTelemetry not installed, off, and on.

"On" exports over OTLP/HTTP to a real Jaeger (``scripts/jaeger-local``), with the SDK's
batching processor, as ``STREAMKIT_TRACING=otlp`` sets it up in production: with its default
sampling (parent-based, 1 % of new traces; the bench's events carry no trace context, so 1 %
of them), with 10 % (``parentbased_traceidratio``), and with every span
(``parentbased_always_on``). Two rows split the
cost: a hooks-only middleware (what any middleware costs) and tracing whose exporter drops
every span (span creation without the OTLP encoding and sending). "Not installed"
blocks the ``opentelemetry`` imports in the child, as in an environment without the extra.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from bench.context import Bench
from bench.figures import THROUGHPUT_COLUMNS, add_ratios, figure, find, row
from bench.model import ScenarioResult, Target
from bench.proc import REPO, Outcome

OFF = "tracing off"
NOT_INSTALLED = "opentelemetry not installed"
NOOP = "a hooks-only middleware (the seam's own cost)"
DROPPED = "tracing on, the SDK's exporter drops every span"
ON = "tracing on, streamkit's default sampling (1 % of new traces)"
SAMPLED = "tracing on, 10 % of traces sampled"
EVERY = "tracing on, every span exported"


def _variants(otlp: str | None) -> list[tuple[str, dict[str, str]]]:
    variants = [
        (NOT_INSTALLED, {"BENCH_BLOCK_IMPORTS": "opentelemetry"}),
        (OFF, {}),
        (NOOP, {"BENCH_NOOP_MIDDLEWARE": "1"}),
        (DROPPED, {"BENCH_TRACING_DROP": "1"}),
    ]
    if otlp is not None:
        on = {"STREAMKIT_TRACING": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp}
        on["OTEL_SERVICE_NAME"] = "bench"
        sampled = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}
        sampled["OTEL_TRACES_SAMPLER_ARG"] = "0.1"
        every = {"OTEL_TRACES_SAMPLER": "parentbased_always_on"}
        variants += [(ON, on), (SAMPLED, {**on, **sampled}), (EVERY, {**on, **every})]
    return variants


def run(b: Bench) -> ScenarioResult:
    otlp, jaeger_note = _jaeger(b)
    s = b.sizes
    shapes = [
        ("s1", "sync", s.s1_events, {}),
        ("s2", "io", s.s2_events, {"sleep_s": s.s2_sleep}),
    ]
    variants = _variants(otlp)
    if b.smoke:  # each kind of run once, on one shape: the harness works, no figures
        shapes, variants = shapes[:1], [v for v in variants if v[0] in (OFF, DROPPED, ON)]
    rows = []
    for shape, mode, events, extra in shapes:
        topic = b.data_topic(shape, s.partitions, events, s.keys)
        outcomes = _runs(b, topic, mode, events, extra, variants)
        shape_rows = [row(f"{shape}: {label}", runs) for label, runs in outcomes.items()]
        base = find(shape_rows, f"{shape}: {OFF}")
        if base is not None:
            add_ratios(shape_rows, base, ("events_per_s", "cpu_us_per_event"))
        rows += shape_rows
    result = ScenarioResult("s12", "Tracing overhead", THROUGHPUT_COLUMNS, rows)
    result.targets = _targets(rows)
    result.notes = [
        "Ratios are to 'tracing off' of the same shape, same run. s1: trivial sync "
        f"handler, {s.s1_events:,} events; s2: async handler awaiting {s.s2_sleep} s, "
        f"{s.s2_events:,} events, {s.keys:,} keys.",
        jaeger_note,
    ]
    return result


def _runs(
    b: Bench,
    topic: str,
    mode: str,
    events: int,
    extra: dict[str, Any],
    variants: list[tuple[str, dict[str, str]]],
) -> dict[str, list[Outcome]]:
    outcomes: dict[str, list[Outcome]] = {label: [] for label, _ in variants}
    for i in range(b.repeat):
        # Each repeat starts at another variant: in a fixed order the first one always ran
        # right after the topic was written or after the every-span run (Jaeger still
        # ingesting on the same 2 cores), and "not installed" read 0.82-0.85x of "off"
        # while the two measured 0.96-1.04x of each other side by side.
        for label, env in variants[i % len(variants) :] + variants[: i % len(variants)]:
            spec = {"topic": topic, "events": events, "mode": mode, "env": env, **extra}
            timeout = 90 + events / 1000
            outcomes[label].append(b.run("streamkit_worker", spec, timeout=timeout, tiers=2))
    return outcomes


def _jaeger(b: Bench) -> tuple[str | None, str]:
    """OTLP endpoint of a running Jaeger (started here if built; smoke runs never build)."""
    env = {"JAEGER_LOCAL_NO_BUILD": "1"} if b.smoke else {}
    done = subprocess.run(
        [str(REPO / "scripts" / "jaeger-local"), "start"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=1200,
    )
    if done.returncode != 0:
        return None, f"tracing-on rows not run: {done.stderr.strip()[-200:]}"
    lines = dict(line.split("=", 1) for line in done.stdout.split() if "=" in line)
    endpoint = lines.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return endpoint, f"spans exported to Jaeger at {endpoint} (scripts/jaeger-local)."


def _targets(rows: list[Any]) -> list[Target]:
    targets = []
    for shape in ("s1", "s2"):
        off = figure(rows, f"{shape}: {OFF}", "events_per_s")
        for label, goal in ((NOT_INSTALLED, 0.95), (ON, 0.5), (EVERY, 0.5)):
            value = figure(rows, f"{shape}: {label}", "events_per_s")
            ratio = value / off if value and off else None
            targets.append(Target(f"{shape}: {label} / off", ratio, goal, unit="x"))
    return targets
