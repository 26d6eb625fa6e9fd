"""The replay ledger: which dead letters were replayed, kept on the broker.

One compacted topic per DLQ, ``<dlq>.replayed``, holds a record per replayed dead letter:
key ``partition:offset`` of the dead letter, value ``{"at", "to", "group"}``. A replay
skips what the ledger lists (``--again`` sends it anyway), whatever filter either replay
used; ``dlq list/show/stats`` read it to say what was replayed.

Written after the broker acknowledged the replayed records and before the replay commits
its progress: a replay stopped in between sends at most that batch again, as before, and
a record is never listed as replayed before it was.
"""

from __future__ import annotations

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
CONFIG = {"cleanup.policy": "compact"}  # one record per dead letter survives, the newest
BATCH = 5000
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
    """Fold one ledger record in; a record streamkit did not write is ignored."""
    try:
        partition, offset = (int(part) for part in (key or b"").split(b":"))
        data = orjson.loads(value or b"")
        entry = Entry(int(data["at"]), str(data["to"]), str(data["group"]))
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        return
    found[(partition, offset)] = entry


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
    """Send one ledger record per replayed dead letter; the caller awaits the deliveries."""
    topic = ledger_topic(dlq_topic)
    return [
        producer.send(
            topic,
            orjson.dumps({"at": e.at_ms, "to": e.target, "group": e.group}),
            key=f"{p}:{o}".encode(),
        )
        for (p, o), e in done
    ]
