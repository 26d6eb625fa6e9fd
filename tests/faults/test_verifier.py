"""The verifier itself: it must catch each kind of fault, and excuse only what a crash allows."""

from __future__ import annotations

from pathlib import Path

from tests.faults.verifier import Crash, Produced, Seen, read_journal, verify

PRODUCED = [Produced(0, o, "a" if o % 2 == 0 else "b", o // 2) for o in range(6)]


def seen(*offsets: int, pid: int = 1) -> list[Seen]:
    by_offset = {p.offset: p for p in PRODUCED}
    return [Seen("t", 0, o, by_offset[o].key, by_offset[o].seq, pid) for o in offsets]


def test_a_clean_run_is_ok() -> None:
    report = verify("clean", PRODUCED, seen(0, 1, 2, 3, 4, 5))
    assert report.ok and "lost=0" in report.summary and report.summary.endswith("OK")


def test_lost_records_are_named_unless_dead_lettered() -> None:
    report = verify("lost", PRODUCED, seen(0, 1, 2, 3))
    assert [p.offset for p in report.lost] == [4, 5]
    assert "first lost: p0@4 key a seq 2" in report.details()
    assert verify("dlq", PRODUCED, seen(0, 1, 2, 3), dead=[("a", 2), ("b", 2)]).ok


def test_a_duplicate_without_a_crash_is_a_fault() -> None:
    report = verify("dup", PRODUCED, seen(0, 1, 2, 3, 4, 5, 5))
    assert not report.ok and report.duplicated[0][0].offset == 5
    assert "first unexplained duplicates: p0@5 key b seq 2 x2" in report.details()
    assert report.out_of_order == []  # a repeat is a duplicate, not also an order fault


def test_a_crash_excuses_repeats_at_or_after_its_commit_only() -> None:
    # 0..3 handled, crash with offset 2 committed: 2 and 3 may come again, 1 may not.
    ok = verify("crash", PRODUCED, seen(0, 1, 2, 3, 2, 3, 4, 5), crashes=[Crash({0: 2}, 4)])
    assert ok.ok and ok.allowed_duplicates == 2
    bad = verify("crash", PRODUCED, seen(0, 1, 2, 3, 1, 2, 3, 4, 5), crashes=[Crash({0: 2}, 4)])
    assert [p.offset for p, _ in bad.duplicated] == [1]


def test_a_record_first_handled_after_a_later_one_of_its_key_is_out_of_order() -> None:
    report = verify("order", PRODUCED, seen(0, 1, 4, 3, 2, 5))
    assert report.out_of_order == [("a", 2, 1)]
    rewind = verify("rewind", PRODUCED, seen(0, 1, 2, 3, 2, 3, 4, 5), crashes=[Crash({0: 2}, 4)])
    assert rewind.ok and rewind.out_of_order == []  # a redelivery from the commit
    per_process = seen(0, 1, 4, pid=1) + seen(3, 2, 5, pid=2)
    assert verify("zombie", PRODUCED, per_process, order_per_process=True).out_of_order == []


def test_the_journal_survives_a_cut_last_line(tmp_path: Path) -> None:
    path = tmp_path / "j.txt"
    path.write_text("t 0 0 a 0 11\nt 0 1 b 0\nt 0 2 a")
    assert read_journal(path) == [Seen("t", 0, 0, "a", 0, 11), Seen("t", 0, 1, "b", 0, 0)]
