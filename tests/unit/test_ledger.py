"""The replay ledger's format: one record per partition and target per batch, read back
to one entry per dead letter; the old one-record-per-dead-letter format still reads."""

from __future__ import annotations

from typing import Any

import orjson

from streamkit.ops import ledger
from streamkit.ops.ledger import Entry, Position


class _Sent:
    """Stands in for the producer: keeps what was sent (the format is all that is tested)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, value: bytes, *, key: bytes) -> None:
        self.records.append((topic, key, value))


def _write(done: list[tuple[Position, Entry]]) -> list[tuple[str, bytes, bytes]]:
    sent = _Sent()
    ledger.record(sent, "orders.billing.dlq", done)  # type: ignore[arg-type]
    return sent.records


def _read(records: list[tuple[str, bytes, bytes]]) -> dict[Position, Entry]:
    found: dict[Position, Entry] = {}
    for _topic, key, value in records:
        ledger._add(found, key, value)
    return found


def test_a_batch_is_one_record_per_partition_and_target_and_reads_back_whole() -> None:
    a, b = Entry(1000, "orders.billing.retry.1", "g"), Entry(1000, "other.retry.1", "g")
    done = [((0, o), a) for o in (3, 4, 5, 9)] + [((1, 7), a), ((0, 6), b)]
    records = _write(done)
    assert len(records) == 3
    assert {topic for topic, _, _ in records} == {"orders.billing.dlq.replayed"}
    first = orjson.loads(records[0][2])
    assert first["offsets"] == [[3, 5], [9, 9]] and records[0][1].startswith(b"0:3-9:")
    assert _read(records) == dict(done)


def test_same_range_other_offsets_gets_another_key_so_compaction_keeps_both() -> None:
    # A later replay with a filter can list a subset of an earlier run: were the keys
    # equal, compaction would drop the earlier record and forget what it listed.
    entry = Entry(1000, "t", "g")
    whole = _write([((0, o), entry) for o in range(0, 10)])
    ends = _write([((0, 0), entry), ((0, 9), entry)])
    assert whole[0][1] != ends[0][1]
    assert whole[0][1].split(b":")[:2] == ends[0][1].split(b":")[:2]  # same partition, range
    assert _write([((0, o), entry) for o in range(0, 10)]) == whole  # a copy: same key


def test_the_old_format_reads_and_the_newest_entry_wins() -> None:
    old = Entry(500, "t1", "g1")
    new = Entry(900, "t2", "g2")
    records: list[tuple[str, bytes, bytes]] = [
        ("x", b"0:4", orjson.dumps({"at": 500, "to": "t1", "group": "g1"})),
        ("x", b"0:5", orjson.dumps({"at": 500, "to": "t1", "group": "g1"})),
    ]
    records += _write([((0, 5), new)])
    assert _read(records) == {(0, 4): old, (0, 5): new}


def test_records_streamkit_did_not_write_are_ignored() -> None:
    bad: list[Any] = [
        ("x", None, None),
        ("x", b"0:1", b"not json"),
        ("x", b"zero:1", orjson.dumps({"at": 1, "to": "t", "group": "g"})),
        ("x", b"0:1-2:d", orjson.dumps({"at": 1, "to": "t", "group": "g", "offsets": [[2, 1]]})),
        ("x", b"0:1-2:d", orjson.dumps({"at": 1, "to": "t", "group": "g", "offsets": [3]})),
        ("x", b"0:1", orjson.dumps([1, 2])),
        ("x", b"0:0-9:d", _value([[0, 9_000_000_000_000]])),  # would expand for hours
        ("x", b"0:3-4:d", _value(["34"])),  # a string of digits is not a run
        ("x", b"0:0-1:d", _value([[True, 1]])),
        ("x", b"0:0-5:d", _value([[0, 3], [2, 5]])),  # overlapping
        ("x", b"0:0-5:d", _value([[-1, 3]])),
        ("x", b"0:0-5:d", _value([])),
    ]
    assert _read(bad) == {}


def _value(offsets: Any) -> bytes:
    return orjson.dumps({"at": 1, "to": "t", "group": "g", "offsets": offsets})


def test_the_latest_entry_wins_whatever_the_order_records_are_read_in() -> None:
    old, new = Entry(500, "t1", "g"), Entry(900, "t2", "g")
    records = _write([((0, 1), new)]) + _write([((0, 1), old)])  # older one read last
    assert _read(records) == {(0, 1): new}


def test_a_batch_wider_than_max_span_is_split_and_every_record_reads() -> None:
    entry = Entry(1, "t", "g")
    offsets = [0, 1, ledger.MAX_SPAN - 1, ledger.MAX_SPAN, 3 * ledger.MAX_SPAN]
    records = _write([((2, o), entry) for o in offsets])
    assert len(records) == 3
    assert _read(records) == {(2, o): entry for o in offsets}
