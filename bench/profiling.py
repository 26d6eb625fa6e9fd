"""Turning a py-spy folded profile into costs per event."""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter

FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def py_spy(peer_python: str | None) -> str | None:
    """The py-spy binary: in the peers' venv, else on PATH."""
    if peer_python:
        candidate = os.path.join(os.path.dirname(peer_python), "py-spy")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("py-spy")


def _name(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m.group('fn')} ({path})"


# Stacks of the running worker: the event loop and the poll thread. Everything else is
# start-up (imports, building the router) and is left out of the per-event costs.
RUNNING = ("_run_once (asyncio/base_events.py)", "_worker (concurrent/futures/thread.py)")


def _running(frames: list[str]) -> bool:
    return any(f.endswith(RUNNING) for f in frames)


def parse(text: str) -> tuple[Counter[str], Counter[str], int, int]:
    """Own and inclusive samples per function (running worker only), total and start-up."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = startup = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_name(f) for f in stack.split(";")]
        if not _running(frames):
            startup += n
            continue
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    return own, inclusive, total, startup


def folded_report(text: str, rate: int, events: int, eps: float) -> str:
    own, inclusive, total, startup = parse(text)
    per_event = 1e6 / rate / events  # µs per event for one sample

    def lines(counter: Counter[str], top: int, only: str = "") -> list[str]:
        picked = [(k, v) for k, v in counter.most_common() if only in k][:top]
        return [f"{v * per_event:8.2f} µs/event {100 * v / total:5.1f}%  {k}" for k, v in picked]

    head = [
        "",
        f"py-spy --gil --rate {rate}: {total:,} samples of the GIL-holding thread while the "
        f"worker ran ({total / rate:.2f} s of GIL time for {events:,} events, "
        f"{total / rate / events * 1e6:.2f} µs/event); {eps:,.0f} events/s while sampled; "
        f"{startup:,} start-up samples (imports, set-up) left out.",
        "C calls (orjson, pydantic-core, librdkafka consume) show as own time of the Python "
        "function that calls them.",
        "",
        "Top 30 by own time:",
    ]
    body = lines(own, 30)
    body += ["", "streamkit functions by inclusive time:", *lines(inclusive, 30, "streamkit/")]
    return "\n".join(head + body) + "\n"
