"""What a replay is asked to do and what it did; where each dead letter goes back to."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from streamkit import envelope as env
from streamkit.ops.errors import UnreplayableRecordError
from streamkit.ops.filters import RecordFilter
from streamkit.ops.records import DeadLetter
from streamkit.retry.topics import TopicNames

DROP_HEADERS = frozenset(env.FAILURE_HEADERS) | {env.H_REPLAYED_FROM, env.H_REPLAYED_AT}
GROUP_PREFIX = "streamkit-replay."
BATCH = 5000  # records per produce-then-commit round


def replay_headers(headers: env.Headers, position: str, at_ms: int) -> env.Headers:
    """The record's headers minus failure (and earlier replay) headers, plus this replay's."""
    return rewrite_headers(headers, position.encode(), str(at_ms).encode())[0]


# Where rewrite_headers puts the value of each header a replay routes by.
_ORIGIN = {env.H_ORIGINAL_TOPIC: 0, env.H_GROUP: 1, env.H_ORIGINAL_PARTITION: 2}
Origin = list[bytes | None]  # [original topic, group, original partition]


def rewrite_headers(
    headers: env.Headers, replayed_from: bytes, replayed_at: bytes
) -> tuple[env.Headers, Origin]:
    """One pass over a dead letter's headers (replay's per-record path): the headers it
    is sent with (:func:`replay_headers`), and the values of its original topic, group
    and original partition headers (the last of each wins; None when absent)."""
    kept: env.Headers = []
    origin: Origin = [None, None, None]
    for header in headers:
        key = header[0]
        slot = _ORIGIN.get(key)
        if slot is not None:
            origin[slot] = header[1]
        if key not in DROP_HEADERS:
            kept.append(header)
    kept.append((env.H_REPLAYED_FROM, replayed_from))
    kept.append((env.H_REPLAYED_AT, replayed_at))
    return kept, origin


def target_partition(raw: bytes | None, count: int) -> int | None:
    """The original partition if the target has it, else None (the key decides)."""
    try:
        partition = int(raw) if raw is not None else -1
    except ValueError:
        return None
    return partition if 0 <= partition < count else None


def default_target(record: DeadLetter, names: TopicNames) -> str:
    """The first retry tier of the group that dead-lettered ``record``."""
    source = record.header(env.H_ORIGINAL_TOPIC)
    group = record.header(env.H_GROUP)
    if not source or not group:
        missing = [h for h, v in ((env.H_ORIGINAL_TOPIC, source), (env.H_GROUP, group)) if not v]
        raise UnreplayableRecordError(
            f"record {record.position} has no {' or '.join(missing)} header, so the retry "
            "tier of its group is unknown (not a streamkit dead letter?); "
            "pass --to TOPIC to choose a target"
        )
    return names.retry(source, group, 1)


def default_group(dlq_topic: str, flt: RecordFilter) -> str:
    """The replay group: one per DLQ, and one per distinct filter.

    Records a filter skips are committed past; keying the group by the filter keeps a
    later replay with another filter from missing them.
    """
    if not flt.label:
        return GROUP_PREFIX + dlq_topic
    digest = hashlib.sha256(flt.label.encode()).hexdigest()[:10]
    return f"{GROUP_PREFIX}{dlq_topic}.{digest}"


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """What to replay, where to, and how fast."""

    dlq_topic: str
    flt: RecordFilter = field(default_factory=RecordFilter)
    to: str | None = None  # None: each record's retry tier 1
    partitions: tuple[int, ...] = ()
    limit: int | None = None
    rate: float | None = None  # records per second
    group: str | None = None
    names: TopicNames = field(default_factory=TopicNames)
    dry_run: bool = False
    again: bool = False  # also what the ledger lists, from the oldest record on
    batch_size: int = BATCH

    @property
    def replay_group(self) -> str:
        """The consumer group that holds this replay's progress."""
        return self.group or default_group(self.dlq_topic, self.flt)


@dataclass(slots=True)
class ReplayReport:
    """What a replay did (or, on a dry run, would do)."""

    group: str
    dry_run: bool
    total: int = 0  # offsets left to read when the replay started
    scanned: int = 0
    replayed: int = 0
    skipped: int = 0
    already: int = 0  # matched, but replayed before (the ledger lists them)
    failed: int = 0
    interrupted: bool = False
    limited: bool = False
    error: str | None = None
    seconds: float = 0.0
    targets: Counter[str] = field(default_factory=Counter)
    sample: list[tuple[DeadLetter, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the sample)."""
        return {
            "group": self.group,
            "dry_run": self.dry_run,
            "replayed": self.replayed,
            "skipped": self.skipped,
            "already_replayed": self.already,
            "failed": self.failed,
            "scanned": self.scanned,
            "interrupted": self.interrupted,
            "limited": self.limited,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "rate": round(self.replayed / self.seconds, 1) if self.seconds else None,
            "targets": dict(self.targets),
        }
