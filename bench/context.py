"""What a scenario gets: the broker, sizes, peers, and a way to run a contender."""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.environment import Peers
from bench.kafka import Admin, produce
from bench.proc import Child, Outcome
from bench.sizes import Sizes

MAIN_VENV_CONTENDERS = {
    "raw",
    "raw_poll",
    "raw_registry",
    "raw_relay",
    "raw_replay",
    "raw_serial_async",
    "raw_async_workers",
    "streamkit_worker",
    "asyncio_ceiling",
    "asyncio_workers",
    "raw_pg_inbox",
}


@dataclass
class Bench:
    """One ``python -m bench`` invocation."""

    bootstrap: str
    admin: Admin
    sizes: Sizes
    repeat: int
    peers: Peers
    workdir: Path
    results_dir: Path = Path("bench/results")
    stem_prefix: str = ""  # "smoke-" in smoke mode, so smoke runs never overwrite
    smoke: bool = False  # tiny sizes: nothing slow to set up (e.g. no Jaeger build)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    topics: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    _seq: int = 0

    def name(self, what: str) -> str:
        """A name unique to this invocation (topics, groups)."""
        self._seq += 1
        return f"bench-{self.run_id}-{what}-{self._seq}"

    def data_topic(self, key: str, partitions: int, events: int, keys: int) -> str:
        """A topic holding ``events`` envelopes, produced once and shared by scenarios."""
        cache_key = f"{key}:{partitions}:{events}:{keys}"
        if cache_key not in self.topics:
            topic = self.admin.create_topic(self.name(key), partitions)
            took = produce(self.bootstrap, topic, events, keys)
            print(f"bench:   produced {events:,} events to {topic} in {took:.1f} s", flush=True)
            self.topics[cache_key] = topic
        return self.topics[cache_key]

    def python_for(self, contender: str) -> str | None:
        if contender in MAIN_VENV_CONTENDERS:
            return sys.executable
        return self.peers.python

    def child(self, contender: str, spec: dict[str, Any], tiers: int | None = None) -> Child:
        """A child for ``contender``; streamkit's retry/DLQ topics are made for its group."""
        python = self.python_for(contender)
        assert python is not None
        spec = {"bootstrap": self.bootstrap, "group": self.name("g"), **spec}
        if tiers is not None:
            spec["_topics"] = self.admin.ensure_tiers(spec["topic"], spec["group"], tiers)
        tag = f"{contender}-{self.name('run')}"
        return Child(python, contender, spec, self.workdir, tag)

    def cleanup(self, child: Child) -> None:
        self.admin.forget(child.spec["group"], child.spec.get("_topics", []))

    def run(
        self, contender: str, spec: dict[str, Any], timeout: float, tiers: int | None = None
    ) -> Outcome:
        """Run one contender to completion; a missing peer is remembered and skipped."""
        if contender in self.unavailable:
            return Outcome(contender, ok=False, note=self.unavailable[contender])
        if self.python_for(contender) is None:
            self.unavailable[contender] = "peer venv unavailable"
            return Outcome(contender, ok=False, note=self.unavailable[contender])
        child = self.child(contender, spec, tiers).start()
        outcome = child.wait(timeout)
        self.cleanup(child)
        if outcome.note.startswith("not installed"):
            self.unavailable[contender] = outcome.note
        status = f"{outcome.result.get('events_per_s', 0):,.0f} ev/s" if outcome.ok else "failed"
        print(f"bench:   {contender}: {status} {outcome.note}", flush=True)
        return outcome
