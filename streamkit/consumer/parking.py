"""Keep-key-order mode: later records of a key wait behind the one in a retry tier.

When a record of key K fails into a retry tier, K is *parked*: every later record of K
(from the source or from an earlier tier) is sent to the tier where K's head waits, with
the same due time, instead of being handled. Tier records are written to the source's
partition number, so one tier partition holds them in order, and they come back in order.

The state is in memory, keyed by (source topic, source partition, key): the records are
safe in Kafka, but after a restart or a rebalance a newer record of a still-parked key may
overtake the parked ones. Costs: an extra publish and a delay for every record behind a
failing key, and range assignment (so partition N of the source and of its tiers share an
owner), which rebalances eagerly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamkit import envelope as env
from streamkit.retry.topics import Tier

RecordId = tuple[str, int, int]  # original topic, partition, offset
LotKey = tuple[str, int, bytes]  # source topic, source partition, key
H_PARKED = "streamkit-parked"


@dataclass(slots=True)
class Parked:
    """Where a key's head waits, and how many of its records are on the retry path."""

    head: RecordId | None  # None: the head was resolved, parked followers still queued
    topic: str
    not_before: int  # epoch ms
    count: int


def record_id(msg: Any, headers: env.Headers | None) -> RecordId:
    """The identity a record keeps across tiers: its original position."""
    topic = env.header_str(headers, env.H_ORIGINAL_TOPIC)
    if topic is None:
        return (msg.topic(), msg.partition(), msg.offset())
    return (
        topic,
        env.header_int(headers, env.H_ORIGINAL_PARTITION) or 0,
        env.header_int(headers, env.H_ORIGINAL_OFFSET) or 0,
    )


class ParkingLot:
    """Parked keys of the partitions this member owns."""

    def __init__(self) -> None:
        self._keys: dict[LotKey, Parked] = {}

    def __len__(self) -> int:
        return len(self._keys)

    @staticmethod
    def lot_key(msg: Any, headers: env.Headers | None, tier: Tier) -> LotKey | None:
        """The key's identity, or None for records without a key."""
        key = msg.key()
        if key is None:
            return None
        rid = record_id(msg, headers)
        return (tier.source, rid[1], key)

    def park_target(
        self, lot: LotKey, msg: Any, headers: env.Headers | None, tier: Tier
    ) -> Parked | None:
        """Where ``msg`` must wait instead of running now, or None to run it."""
        parked = self._keys.get(lot)
        if parked is None or parked.topic == msg.topic():
            return None  # never park a record where it already is: that would loop hot
        if tier.n == 0:
            return parked  # a newer record: behind everything already on the path
        if parked.head is not None and parked.head != record_id(msg, headers):
            return parked  # a follower, but its head moved on to a later tier
        return None  # the head itself, or the next follower once the head resolved

    def parked(self, lot: LotKey, tier: Tier) -> None:
        """``msg`` was sent to wait behind its key's head."""
        if tier.n == 0:
            self._keys[lot].count += 1

    def failed_to_tier(
        self,
        lot: LotKey,
        msg: Any,
        headers: env.Headers | None,
        tier: Tier,
        topic: str,
        not_before: int,
    ) -> None:
        """A record of the key failed into ``topic``: it is the head now."""
        parked = self._keys.get(lot)
        rid = record_id(msg, headers)
        if parked is None:
            self._keys[lot] = Parked(rid, topic, not_before, 1)
            return
        parked.head, parked.topic, parked.not_before = rid, topic, not_before
        if tier.n == 0:
            parked.count += 1

    def left(self, lot: LotKey, msg: Any, headers: env.Headers | None, tier: Tier) -> None:
        """A tier record of the key was handled or dead-lettered: one fewer on the path."""
        parked = self._keys.get(lot)
        if parked is None or tier.n == 0:
            return
        if parked.head == record_id(msg, headers):
            parked.head = None  # the head is through: its followers may run, in order
        parked.count -= 1
        if parked.count <= 0:
            del self._keys[lot]

    def drop_partition(self, topic: str, partition: int) -> None:
        """Forget the keys of a source partition this member no longer owns."""
        for lot in [k for k in self._keys if k[0] == topic and k[1] == partition]:
            del self._keys[lot]


def parked_headers(msg: Any, original: env.Headers | None, parked: Parked) -> env.Headers:
    """Headers of a record sent to wait: original-* kept or added, the head's due time."""
    headers = [(k, v) for k, v in (original or []) if k not in (env.H_NOT_BEFORE, H_PARKED)]
    if env.header_value(headers, env.H_ORIGINAL_TOPIC) is None:
        headers += [
            (env.H_ORIGINAL_TOPIC, msg.topic().encode()),
            (env.H_ORIGINAL_PARTITION, str(msg.partition()).encode()),
            (env.H_ORIGINAL_OFFSET, str(msg.offset()).encode()),
            (env.H_ORIGINAL_TIMESTAMP, str(msg.timestamp()[1]).encode()),
        ]
    headers += [(env.H_NOT_BEFORE, str(parked.not_before).encode()), (H_PARKED, b"1")]
    return headers
