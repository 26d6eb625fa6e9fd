"""The fault suite's verifier: what was produced against what the handlers saw.

Every produced record carries ``seq`` (its index among its key's records) in its payload,
so a record is identified by (key, seq) wherever it is seen (source topic or retry tier).
Per source partition and key it reports records

* lost -- produced, never seen by a handler and not in the DLQ;
* duplicated -- seen more than once where no crash allows it: a clean stop or a rebalance
  allows none; a crash allows one more copy of each record at or after the partition's
  committed offset at that moment that was seen before it (delivered again after restart);
* out of order -- a record handled for the first time after a later record of its key
  (going back to records already seen is a redelivery, judged as a duplicate).

:func:`verify` returns a :class:`Report`; its one-line ``summary`` is collected in
:data:`SUMMARIES` and printed by the fault suite's terminal-summary hook.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUMMARIES: list[str] = []  # one line per verified scenario, printed at the end of the run
FIRST = 5  # offenders listed per kind


@dataclass(frozen=True, slots=True)
class Produced:
    """One record as acknowledged by the broker."""

    partition: int
    offset: int
    key: str
    seq: int


@dataclass(frozen=True, slots=True)
class Seen:
    """One journal line: a handler finished this record."""

    topic: str
    partition: int
    offset: int
    key: str
    seq: int
    pid: int = 0  # the process that handled it


@dataclass(frozen=True, slots=True)
class Crash:
    """A SIGKILL: the group's committed offsets then, and how many journal lines existed."""

    committed: dict[int, int]  # source partition -> committed offset (-1001: none)
    journal_len: int


@dataclass
class Report:
    """Findings of one verification, with the first offenders of each kind."""

    scenario: str
    produced: int
    seen: int
    dead: int
    lost: list[Produced] = field(default_factory=list)
    duplicated: list[tuple[Produced, int]] = field(default_factory=list)  # record, extra copies
    allowed_duplicates: int = 0
    out_of_order: list[tuple[str, int, int]] = field(default_factory=list)  # key, prev, seq
    per_key: dict[tuple[int, str], Counter[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No record lost, duplicated beyond what crashes allow, or out of order."""
        return not (self.lost or self.duplicated or self.out_of_order)

    @property
    def summary(self) -> str:
        """One line for the test output."""
        verdict = "OK" if self.ok else "FAIL"
        return (
            f"verifier[{self.scenario}]: produced={self.produced} seen={self.seen} "
            f"dead={self.dead} lost={len(self.lost)} "
            f"duplicates={sum(n for _, n in self.duplicated)} unexplained "
            f"+{self.allowed_duplicates} after-commit out_of_order={len(self.out_of_order)} "
            f"-> {verdict}"
        )

    def details(self) -> str:
        """The first offenders, per kind, and the keys they belong to."""
        lines = [self.summary]
        if self.lost:
            lines.append("first lost: " + ", ".join(map(_where, self.lost[:FIRST])))
        if self.duplicated:
            lines.append(
                "first unexplained duplicates: "
                + ", ".join(f"{_where(p)} x{n + 1}" for p, n in self.duplicated[:FIRST])
            )
        if self.out_of_order:
            lines.append(
                "first out of order: "
                + ", ".join(f"key {k} seq {a} then {b}" for k, a, b in self.out_of_order[:FIRST])
            )
        bad = {pk: c for pk, c in self.per_key.items() if c}
        for (partition, key), counts in sorted(bad.items())[:FIRST]:
            lines.append(f"  partition {partition} key {key}: {dict(counts)}")
        return "\n".join(lines)

    def record(self) -> Report:
        """Print the summary and keep it for the end of the run."""
        SUMMARIES.append(self.summary)
        print(self.summary, flush=True)
        return self

    def check(self) -> Report:
        """Record the summary, and fail the test with the details if not ok."""
        self.record()
        assert self.ok, self.details()
        return self


def _where(p: Produced) -> str:
    return f"p{p.partition}@{p.offset} key {p.key} seq {p.seq}"


def read_journal(path: Path) -> list[Seen]:
    """The journal's ``topic partition offset key seq [pid]`` lines, in the order written."""
    if not path.exists():
        return []
    seen = []
    for line in path.read_text().splitlines():
        parts = line.split(" ")
        if len(parts) >= 5:  # a SIGKILL may cut a line; O_APPEND writes are whole in practice
            topic, partition, offset, key, seq = parts[:5]
            pid = int(parts[5]) if len(parts) > 5 else 0
            seen.append(Seen(topic, int(partition), int(offset), key, int(seq), pid))
    return seen


def verify(
    scenario: str,
    produced: Sequence[Produced],
    seen: Sequence[Seen],
    *,
    crashes: Sequence[Crash] = (),
    dead: Iterable[tuple[str, int]] = (),
    order_per_process: bool = False,
) -> Report:
    """Compare ``produced`` with ``seen`` (journal order); ``dead`` is (key, seq) in the DLQ.

    ``order_per_process`` checks key order within each handling process only: for a member
    that was frozen, whose in-memory work completes after its successor took over.
    """
    by_id = {(p.key, p.seq): p for p in produced}
    dead_ids = set(dead)
    copies = Counter((s.key, s.seq) for s in seen)
    report = Report(scenario, len(produced), len(seen), len(dead_ids))
    report.per_key = {(p.partition, p.key): Counter() for p in produced}
    for ident, rec in by_id.items():
        if copies[ident] == 0 and ident not in dead_ids:
            report.lost.append(rec)
            report.per_key[(rec.partition, rec.key)]["lost"] += 1
    allowed = _allowed_copies(by_id, seen, crashes)
    for ident, n in copies.items():
        rec = by_id.get(ident)
        if rec is None or n <= 1:
            continue
        excess = n - 1 - allowed[ident]
        report.allowed_duplicates += min(n - 1, allowed[ident])
        if excess > 0:
            report.duplicated.append((rec, excess))
            report.per_key[(rec.partition, rec.key)]["duplicated"] += excess
    report.out_of_order = _out_of_order(seen, order_per_process)
    for key, _, _ in report.out_of_order:
        part = next(p.partition for p in produced if p.key == key)
        report.per_key[(part, key)]["out_of_order"] += 1
    report.lost.sort(key=lambda p: (p.partition, p.offset))
    report.duplicated.sort(key=lambda d: (d[0].partition, d[0].offset))
    return report


def _allowed_copies(
    by_id: dict[tuple[str, int], Produced], seen: Sequence[Seen], crashes: Sequence[Crash]
) -> Counter[tuple[str, int]]:
    """Per record, how many extra copies the crashes explain.

    A crash explains one more copy of a record seen before it whose source offset is at or
    after its partition's committed offset at the crash: the restart delivers it again.
    """
    allowed: Counter[tuple[str, int]] = Counter()
    for crash in crashes:
        before = {(s.key, s.seq) for s in seen[: crash.journal_len]}
        for ident in before:
            rec = by_id.get(ident)
            if rec is not None and rec.offset >= crash.committed.get(rec.partition, -1001):
                allowed[ident] += 1
    return allowed


def _out_of_order(seen: Sequence[Seen], per_process: bool) -> list[tuple[str, int, int]]:
    """Records handled for the first time after a later record of their key.

    A key going back to a record already seen is a redelivery (from the last commit, after
    a crash, a rebalance or a broker restart), judged by the duplicate rule, not here.
    """
    last: dict[tuple[str, int], int] = {}
    before: set[tuple[str, int]] = set()
    found: list[tuple[str, int, int]] = []
    for s in seen:
        unit = (s.key, s.pid if per_process else 0)
        prev = last.get(unit)
        if prev is not None and s.seq < prev and (s.key, s.seq) not in before:
            found.append((s.key, prev, s.seq))
        before.add((s.key, s.seq))
        last[unit] = s.seq
    return found


def by_partition(produced: Iterable[Produced]) -> dict[int, list[Produced]]:
    """Produced records grouped per partition, in offset order."""
    out: dict[int, list[Produced]] = defaultdict(list)
    for p in sorted(produced, key=lambda p: (p.partition, p.offset)):
        out[p.partition].append(p)
    return dict(out)
