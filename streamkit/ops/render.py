"""Output of the operator commands: rich tables for people, JSON for scripts.

Tables go to stdout; progress bars and prompts to stderr, so ``--json`` output piped
into another tool stays clean.
"""

from __future__ import annotations

import re
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
FIELD_CAP = 200  # characters one table cell may print: a 10 KB event type must not fill a screen
# What a record may carry that a terminal would obey instead of print: C0/C1 controls (ESC
# starts ANSI colour, cursor moves and OSC 8 links, BEL ends OSC), DEL, and the Unicode
# bidirectional overrides that reorder what is shown. Newline and tab are kept where
# multi-line text is printed (tracebacks) and escaped in one-line cells.
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE_LINES = re.compile(f"[{_CONTROLS}]")
_UNSAFE_CELL = re.compile(f"[{_CONTROLS}\t\n]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: str, cap: int | None = FIELD_CAP, *, lines: bool = False) -> str:
    """``value`` safe for a terminal: controls shown as ``\\x1b``, cut after ``cap``.

    Print the result as plain text (a :class:`~rich.text.Text`, or ``markup=False``):
    that also keeps ``[/]`` in a record from being read as rich markup.
    """
    safe = (_UNSAFE_LINES if lines else _UNSAFE_CELL).sub(_escape_char, value)
    if cap is None or len(safe) <= cap:
        return safe
    return f"{safe[: cap - 1]}… (+{len(safe) - cap + 1} chars)"


def plain(value: Any, cap: int | None = FIELD_CAP, *, lines: bool = False) -> Text:
    """Any value as un-styled, escaped :class:`~rich.text.Text` (never parsed as markup)."""
    return Text(printable("" if value is None else str(value), cap, lines=lines))


def console() -> Console:
    """A console on stdout; plain and wide when stdout is not a terminal.

    Markup is off: what is printed comes from records and topic names, which may hold
    ``[``; styles are given as :class:`~rich.text.Text` styles instead.
    """
    tty = sys.stdout.isatty()
    return Console(width=None if tty else WIDE, highlight=False, soft_wrap=not tty, markup=False)


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
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: int = 0,
    cap: int = FIELD_CAP,
) -> Table:
    """A table; the last ``numeric`` columns are right-aligned.

    Every cell is escaped (:func:`plain`): a record's bytes can neither style the table
    nor reach the terminal as control sequences; each prints at most ``cap`` characters.
    """
    out = Table(
        title=None if title is None else plain(title), title_justify="left", header_style="bold"
    )
    for i, name in enumerate(columns):
        right = i >= len(columns) - numeric
        out.add_column(name, justify="right" if right else "left", overflow="fold")
    for row in rows:
        out.add_row(*(plain(v, cap) for v in row))
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
