"""Times given on the command line: ISO timestamps or durations ago (``2h``, ``30m``).

Everything is epoch milliseconds, like Kafka record timestamps. A timestamp without a
time zone is taken as UTC, so the same command means the same thing on every machine.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(time.time() * 1000)


def parse_duration(text: str) -> float:
    """``"2h"``, ``"30m"``, ``"1h30m"``, ``"45s"``, ``"500ms"``, ``"7d"`` -> seconds."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or not _DURATION.fullmatch(compact):
        raise ValueError(f"invalid duration {text!r}: expected e.g. 90s, 30m, 2h, 1h30m, 7d")
    return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(compact))


def parse_timestamp(text: str) -> int:
    """An ISO 8601 timestamp or date (``2024-05-01T12:00:00Z``) -> epoch ms; naive is UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"invalid timestamp {text!r}: expected ISO 8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def parse_time(text: str, now: int | None = None) -> int:
    """A point in time: ``now``, a duration ago (``2h``) or an ISO timestamp -> epoch ms."""
    stripped = text.strip()
    reference = now_ms() if now is None else now
    if stripped.lower() == "now":
        return reference
    if stripped[:1].isdigit() and _DURATION.fullmatch(stripped.lower().replace(" ", "")):
        return reference - int(parse_duration(stripped) * 1000)
    try:
        return parse_timestamp(stripped)
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: expected an ISO timestamp (2024-05-01T12:00:00Z) "
            "or a duration ago (30m, 2h, 7d)"
        ) from None


def iso(ms: int) -> str:
    """Epoch milliseconds as an ISO 8601 UTC timestamp with millisecond precision."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def human_age(seconds: float) -> str:
    """A short age for people: ``42s``, ``5m 3s``, ``2h 10m``, ``3d 4h``."""
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
