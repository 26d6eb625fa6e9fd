"""Offset arithmetic shared by the runtime (lag gauge) and the operator tools (``lag``)."""

from __future__ import annotations


def messages_behind(end: int, committed: int | None, start: int) -> int:
    """End offset minus the committed offset, or minus ``start`` when nothing is committed.

    The one definition of lag: ``streamkit lag`` and the runtime's lag gauge both use it.
    """
    base = committed if committed is not None and committed >= 0 else start
    return max(end - base, 0)
