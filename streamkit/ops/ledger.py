"""The replay ledger: which dead letters were replayed, kept on the broker.

One compacted topic per DLQ, ``<dlq>.replayed``. A replay writes one record per DLQ
partition and target per batch (thousands of dead letters):

- key ``partition:first-last:digest``, the digest of the value, so a later record compacts
  away only a copy of itself, never an entry listing other offsets of the same range;
- value ``{"at", "to", "group", "offsets": [[first, last], ...]}``, inclusive runs of DLQ
  offsets.

Before 2026-12-07 it was one record per dead letter (key ``partition:offset``, no
``offsets``); both are read, and the newest entry of a dead letter wins. A replay skips
what the ledger lists (``--again`` sends it anyway), whatever filter either replay used;
``dlq list/show/stats`` read it to say what was replayed.

Written after the broker acknowledged the replayed records and before the replay commits
its progress: a replay stopped in between sends at most that batch again, as before, and
a record is never listed as replayed before it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from streamkit.ops.cluster import Cluster
from streamkit.ops.errors import OpsError
from streamkit.ops.reader import full_spans, scan
from streamkit.ops.timeparse import iso
from streamkit.ops.topics import TopicSpec, create
from streamkit.producer import Delivery, Producer

SUFFIX = ".replayed"
# Compaction drops only exact copies now (the key is the value's digest); it kept the
# newest record per dead letter in the old format. The topic grows by one small record per
# DLQ partition and replay batch.
CONFIG = {"cleanup.policy": "compact"}
BATCH = 5000
# The offsets one ledger record may span (first to last): the writer splits at it, the
# reader ignores a record past it, so a corrupt record cannot make a reader expand
# billions of offsets.
MAX_SPAN = 100_000
Position = tuple[int, int]  # (partition, offset) in the DLQ


def ledger_topic(dlq_topic: str) -> str:
    """The ledger of ``dlq_topic``."""
    return dlq_topic + SUFFIX


@dataclass(frozen=True, slots=True)
class Entry:
    """One replay of one dead letter."""

    at_ms: int
    target: str
    group: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"at": iso(self.at_ms), "at_ms": self.at_ms, "to": self.target, "group": self.group}


def read(cluster: Cluster, dlq_topic: str) -> dict[Position, Entry]:
    """Every dead letter of ``dlq_topic`` the ledger lists (empty: never replayed)."""
    topic = ledger_topic(dlq_topic)
    if not (cluster.exists(topic) or cluster.exists(topic, refresh=True)):
        return {}
    spans = full_spans(cluster, topic, cluster.partitions(topic))
    consumer = cluster.consumer()
    found: dict[Position, Entry] = {}
    try:
        for batch in scan(consumer, topic, spans, batch_size=BATCH, idle_timeout=cluster.timeout):
            for msg in batch:
                _add(found, msg.key(), msg.value())
    finally:
        consumer.close()
    return found


def _add(found: dict[Position, Entry], key: bytes | None, value: bytes | None) -> None:
    """Fold one ledger record in; a record streamkit did not write is ignored. The entry
    with the latest ``at`` wins, whatever the order records are read in."""
    try:
        partition, _, where = (key or b"").partition(b":")  # where: the offset (old format)
        data = orjson.loads(value or b"")
        entry = Entry(_int(data["at"]), str(data["to"]), str(data["group"]))
        runs = _runs(data["offsets"]) if "offsets" in data else [(int(where), int(where))]
        p = int(partition)
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        return
    for first, last in runs:
        for offset in range(first, last + 1):
            seen = found.get((p, offset))
            if seen is None or seen.at_ms <= entry.at_ms:
                found[(p, offset)] = entry


def _runs(raw: Any) -> list[tuple[int, int]]:
    """``[[first, last], ...]``: sorted, disjoint, non-negative runs of ints spanning at
    most MAX_SPAN; ValueError/TypeError for anything else."""
    runs = [(_int(first), _int(last)) for first, last in raw]
    previous = -1
    for first, last in runs:
        if not previous < first <= last:
            raise ValueError("runs must be sorted, disjoint and non-negative")
        previous = last
    if not runs or runs[-1][1] - runs[0][0] >= MAX_SPAN:
        raise ValueError("no runs, or spanning too many offsets")
    return runs


def _int(raw: Any) -> int:
    if type(raw) is not int:  # not a bool, a float or a string of digits
        raise TypeError(f"not an int: {raw!r}")
    return raw


def ensure(cluster: Cluster, dlq_topic: str) -> str:
    """Create the ledger of ``dlq_topic`` if it does not exist yet; returns its name."""
    topic = ledger_topic(dlq_topic)
    if not cluster.exists(topic):
        try:
            create(cluster, [TopicSpec(topic, 1, config=CONFIG)], exist_ok=True)
        except OpsError as exc:
            raise OpsError(
                f"{exc}; a replay records what it sent there (create it with "
                f"`streamkit topics create {topic} --partitions 1 -c cleanup.policy=compact`)"
            ) from None
    return topic


def record(
    producer: Producer, dlq_topic: str, done: Iterable[tuple[Position, Entry]]
) -> list[Delivery]:
    """Send the ledger records for ``done``: one per DLQ partition and entry (a batch of
    one replay has one entry per target). The caller awaits the deliveries."""
    topic = ledger_topic(dlq_topic)
    grouped: dict[tuple[int, Entry], list[int]] = {}
    for (partition, offset), entry in done:
        grouped.setdefault((partition, entry), []).append(offset)
    deliveries = []
    for (partition, entry), offsets in grouped.items():
        for runs in _as_runs(sorted(offsets)):
            value = {"at": entry.at_ms, "to": entry.target, "group": entry.group, "offsets": runs}
            data = orjson.dumps(value)
            digest = hashlib.blake2b(data, digest_size=8).hexdigest()
            key = f"{partition}:{runs[0][0]}-{runs[-1][1]}:{digest}".encode()
            deliveries.append(producer.send(topic, data, key=key))
    return deliveries


def _as_runs(offsets: list[int]) -> list[list[list[int]]]:
    """Sorted offsets as inclusive runs, per record (each spanning under MAX_SPAN):
    [3, 4, 5, 9] -> [[[3, 5], [9, 9]]]."""
    records: list[list[list[int]]] = []
    for offset in offsets:
        runs = records[-1] if records and offset - records[-1][0][0] < MAX_SPAN else None
        if runs is None:
            records.append([[offset, offset]])
        elif offset == runs[-1][1] + 1:
            runs[-1][1] = offset
        else:
            runs.append([offset, offset])
    return records
