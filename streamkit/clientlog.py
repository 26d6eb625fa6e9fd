"""The one logger librdkafka's own log lines go through (consumer, producer, admin alike).

During a broker outage librdkafka logs a line per connection attempt per broker thread
(hundreds a minute). :class:`RepeatFilter` lets the first of each kind through and then at
most one every ``every`` seconds, saying how many were held back.
"""

from __future__ import annotations

import logging
import re
import threading
import time

_NUMBERS = re.compile(r"\d+")


class RepeatFilter(logging.Filter):
    """Rate-limits repeated client log lines (same facility and text, numbers aside)."""

    def __init__(self, every: float = 30.0) -> None:
        super().__init__()
        self.every = every
        self._seen: dict[tuple[int, str], tuple[float, int]] = {}  # key -> (last, held)
        self._lock = threading.Lock()  # client threads log concurrently

    def filter(self, record: logging.LogRecord) -> bool:
        """True to emit ``record``; repeats within ``every`` seconds are counted instead."""
        key = (record.levelno, _NUMBERS.sub("#", record.getMessage()))
        now = time.monotonic()
        with self._lock:
            last, held = self._seen.get(key, (-self.every, 0))
            if now - last < self.every:
                self._seen[key] = (last, held + 1)
                return False
            self._seen[key] = (now, 0)
            if len(self._seen) > 1000:  # unbounded variety: forget, never grow
                self._seen.clear()
        if held:
            record.msg = f"{record.msg} (repeated {held} times in {self.every:.0f}s)"
        return True


RDKAFKA_LOG = logging.getLogger("streamkit.librdkafka")
RDKAFKA_LOG.addFilter(RepeatFilter())
