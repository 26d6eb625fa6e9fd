"""Workload sizes: the defaults (a few minutes on 2 cores) and ``--smoke`` (under a minute)."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Sizes:
    """Every size a scenario reads; override any with ``--set name=value``."""

    keys: int = 1_000
    partitions: int = 3
    # 1. throughput
    s1_events: int = 300_000
    s1_peer_events: int = 100_000  # slow peers handle the first N of the same topic
    # 2. I/O-bound async handler
    s2_events: int = 50_000
    s2_serial_events: int = 1_000  # one-at-a-time reference runs
    s2_sleep: float = 0.005
    s2_workers: int = 100  # FastStream max_workers
    # 3. latency
    s3_rate: int = 1_000
    s3_seconds: float = 30.0
    # 4. failure path
    s4_fail_every: int = 10
    # 5. backlog memory
    s5_events: int = 1_000_000
    s5_seconds: float = 20.0
    s5_keys: int = 100
    s5_sleep: float = 0.01
    # 6. replay
    s6_records: int = 100_000
    # 7. scale-out
    s7_events: int = 600_000
    s7_partitions: int = 12
    s7_members: tuple[int, ...] = (1, 2, 4)
    s7_join_rate: int = 5_000
    s7_join_seconds: float = 10.0
    s7_phase_seconds: float = 8.0  # lifecycle: seconds between join, join, leave, kill
    s7_lifecycle: tuple[str, ...] = ("classic", "kip848", "kip848_1s", "static")
    s7_modes: tuple[str, ...] = ("classic", "kip848", "static")  # capacity rows (2+ members)
    # 9. how cost grows
    s9_events: int = 200_000
    s9_io_events: int = 30_000
    s9_partitions: tuple[int, ...] = (3, 48, 192)
    s9_types: tuple[int, ...] = (1, 50)
    s9_pads: tuple[int, ...] = (0, 10_000)
    s9_keys: tuple[int, ...] = (10, 100_000)
    # 11. idempotency
    s11_events: int = 100_000
    s11_pg_events: int = 10_000
    # 10. schema registry (Avro, JSON Schema)
    s10_events: int = 100_000
    # 8. consume -> publish (exactly-once)
    s8_events: int = 300_000
    s8_rate: int = 1_000
    s8_seconds: float = 10.0
    s8_tuning: int = 1  # 1: also the commit interval / retry.backoff.ms rows
    # profile
    profile_events: int = 300_000
    profile_rate: int = 1_000  # py-spy samples per second


DEFAULT = Sizes()
SMOKE = Sizes(
    s1_events=20_000,
    s1_peer_events=5_000,
    s2_events=2_000,
    s2_serial_events=100,
    s3_seconds=1.0,
    s5_events=20_000,
    s5_seconds=2.0,
    s6_records=2_000,
    s7_events=20_000,
    s7_members=(1, 2),
    s7_join_rate=2_000,
    s7_join_seconds=5.0,
    s9_events=5_000,
    s9_io_events=1_000,
    # One child per dimension, each at its unusual end: every code path once, not the ratios.
    s9_partitions=(48,),
    s9_types=(50,),
    s9_pads=(10_000,),
    s9_keys=(10,),
    s7_lifecycle=(),  # a killed member's session alone is 45 s
    s7_modes=("classic",),
    s8_events=5_000,
    s8_seconds=1.0,
    s8_tuning=0,
    profile_events=20_000,
    s11_events=20_000,
    s11_pg_events=2_000,
    s10_events=5_000,
)


def with_overrides(sizes: Sizes, pairs: list[str]) -> Sizes:
    """``["s1_events=1000", ...]`` applied to ``sizes`` (types follow the defaults)."""
    changes: dict[str, object] = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        current = getattr(sizes, name)  # AttributeError names a typo
        if isinstance(current, tuple):
            kind = type(current[0]) if current else int
            changes[name] = tuple(kind(x) for x in text.split(",") if x)
        else:
            changes[name] = type(current)(text)
    return replace(sizes, **changes)
