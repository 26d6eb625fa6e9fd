"""Output of the operator commands: rich tables for people, JSON for scripts.

Tables go to stdout; progress bars and prompts to stderr, so ``--json`` output piped
into another tool stays clean.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

WIDE = 200  # columns when stdout is not a terminal: keep rows on one line in logs


def console() -> Console:
    """A console on stdout; plain and wide when stdout is not a terminal."""
    tty = sys.stdout.isatty()
    return Console(width=None if tty else WIDE, highlight=False, soft_wrap=not tty)


def err_console() -> Console:
    """A console on stderr (progress bars)."""
    return Console(stderr=True, highlight=False)


def print_json(obj: Any) -> None:
    """Pretty JSON on stdout."""
    sys.stdout.write(
        orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    )
    sys.stdout.write("\n")
    sys.stdout.flush()


def table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: int = 0
) -> Table:
    """A table; the last ``numeric`` columns are right-aligned."""
    out = Table(title=title, title_justify="left", header_style="bold")
    for i, name in enumerate(columns):
        right = i >= len(columns) - numeric
        out.add_column(name, justify="right" if right else "left", overflow="fold")
    for row in rows:
        out.add_row(*("" if v is None else str(v) for v in row))
    return out


def shorten(value: str | None, width: int) -> str:
    """``value`` on one line, cut to ``width`` characters with an ellipsis."""
    if not value:
        return ""
    flat = " ".join(value.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


class RateColumn(ProgressColumn):
    """Records per second."""

    def render(self, task: Task) -> Text:
        """The task's current speed."""
        speed = task.finished_speed or task.speed
        return Text(f"{speed or 0:,.0f} rec/s", style="progress.data.speed")


def progress_bar(enabled: bool) -> Progress:
    """Count, bar, rate and ETA on stderr; ``enabled`` False renders nothing."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        console=err_console(),
        disable=not enabled,
        transient=False,
    )
