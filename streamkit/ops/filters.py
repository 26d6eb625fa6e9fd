"""Record filters shared by ``dlq list``, ``dlq stats`` and ``replay``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from streamkit.ops.records import DeadLetter
from streamkit.ops.timeparse import parse_time


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Which records to select; empty sets and None mean "any".

    ``label`` is the filter as the operator typed it (``--since 2h``, not the moment it
    resolved to), so the same command resumes the same replay group.
    """

    event_types: frozenset[str] = frozenset()
    error_types: frozenset[str] = frozenset()
    keys: frozenset[bytes] = frozenset()
    since_ms: int | None = None  # inclusive, record timestamp
    until_ms: int | None = None  # exclusive
    label: str = field(default="", compare=False)

    @classmethod
    def build(
        cls,
        *,
        event_types: Iterable[str] = (),
        error_types: Iterable[str] = (),
        keys: Iterable[str] = (),
        since: str | None = None,
        until: str | None = None,
        now: int | None = None,
    ) -> RecordFilter:
        """A filter from command-line texts; raises ValueError on a bad time."""
        parts = [
            ("event-type", sorted(set(event_types))),
            ("error-type", sorted(set(error_types))),
            ("key", sorted(set(keys))),
            ("since", [since] if since else []),
            ("until", [until] if until else []),
        ]
        return cls(
            event_types=frozenset(event_types),
            error_types=frozenset(error_types),
            keys=frozenset(k.encode() for k in keys),
            since_ms=None if since is None else parse_time(since, now),
            until_ms=None if until is None else parse_time(until, now),
            label=" ".join(f"--{name}={v}" for name, values in parts for v in values),
        )

    @property
    def active(self) -> bool:
        """True when the filter can reject a record."""
        return bool(self.label) or self != RecordFilter()

    def matches(self, record: DeadLetter) -> bool:
        """True when ``record`` passes every condition."""
        if self.keys and record.key not in self.keys:
            return False
        if self.since_ms is not None and record.timestamp_ms < self.since_ms:
            return False
        if self.until_ms is not None and record.timestamp_ms >= self.until_ms:
            return False
        if self.event_types and record.event_type() not in self.event_types:
            return False
        return not self.error_types or record.error_type() in self.error_types
