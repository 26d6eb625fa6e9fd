"""Result types shared by scenarios and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Column:
    """One table column: the figure's key, its header, and a format spec."""

    key: str
    header: str
    fmt: str = ",.0f"


@dataclass
class Row:
    """One contender's (median) figures in one scenario."""

    label: str
    figures: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Target:
    """A goal from the issue and whether this run met it (None: not measured)."""

    text: str
    value: float | None
    goal: float
    higher_is_better: bool = True
    unit: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.goal if self.higher_is_better else self.value <= self.goal

    @property
    def margin(self) -> str:
        """``+12%`` (beyond the goal) or ``-30%`` (short of it)."""
        if self.value is None or not self.goal:
            return ""
        change = self.value / self.goal - 1
        return f"{(change if self.higher_is_better else -change):+.0%}"


@dataclass
class ScenarioResult:
    """A scenario's table, targets and notes."""

    key: str
    title: str
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
