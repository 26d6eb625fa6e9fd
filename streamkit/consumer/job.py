"""One event on its way through a handler, and the stats sink the consumer core counts into."""

from __future__ import annotations

import contextvars
from collections import defaultdict
from collections.abc import Hashable
from typing import Any, Protocol

from streamkit.consumer.parking import LotKey
from streamkit.consumer.state import PartitionState
from streamkit.errors import TransientDependencyError
from streamkit.handlers.registry import HandlerSpec
from streamkit.record import Headers, Record


class Job:
    """One event past routing: its record, partition, handler, payload and lane."""

    __slots__ = (
        "attempt",
        "context",
        "event_id",
        "event_type",
        "headers",
        "held",
        "lane",
        "lot",
        "msg",
        "payload",
        "spec",
        "state",
    )

    def __init__(
        self,
        msg: Record,
        state: PartitionState,
        spec: HandlerSpec,
        payload: Any,
        event_id: str | None,
        event_type: str,
        attempt: int,
        headers: Headers | None = None,
    ) -> None:
        self.msg = msg
        self.headers = headers  # read once: a second headers() call can crash (see dispatch)
        self.state = state
        self.spec = spec
        self.payload = payload
        self.event_id = event_id
        self.event_type = event_type
        self.attempt = attempt
        self.lane = lane_of(spec, msg)
        self.lot: LotKey | None = None  # set for keep-key-order handlers
        self.held: TransientDependencyError | None = None  # what it waits on (consumer/hold)
        # A copy of the contextvars of whoever took the record (the worker's poll loop, a
        # test's TestBroker.publish): its handler runs in it, never in those of the task
        # or callback that happens to launch it (the job before it in its lane): in it, or
        # in a task's context equal to it (a copy made per task, not per event: another
        # copy per event cost ~5 % of scenario 2; see Scheduler._run_of).
        self.context = contextvars.copy_context()


def lane_of(spec: HandlerSpec, msg: Record) -> Hashable | None:
    """The ordering lane: jobs of one lane run one at a time, in offset order."""
    if spec.ordering == "key":
        key = msg.key()
        return None if key is None else (msg.topic(), msg.partition(), key)
    if spec.ordering == "partition":
        return (msg.topic(), msg.partition())
    return None


class EventStats(Protocol):
    """Where the consumer core counts outcomes (observability's BatchStats implements it)."""

    # (topic, event type) -> durations of handlers whose events were done ok, with no
    # exemplar to record: :meth:`duration` and :meth:`count` ``ok`` in one append, no call
    # (the hot path's, where no middleware runs).
    ok_times: defaultdict[tuple[str, str], list[float]]

    def count(self, topic: str, event_type: str, outcome: str) -> None:
        """One event finished with ``outcome``."""

    def duration(self, event_type: str, seconds: float) -> None:
        """One handler run took ``seconds``."""

    def failure(self, kind: str, event_type: str, error_type: str) -> None:
        """One event was sent to a retry tier (``kind`` retry) or the DLQ."""

    def decode_error(self, topic: str) -> None:
        """One record could not be decoded or routed."""

    def publish_failed(self, kind: str) -> None:
        """A retry/DLQ publish failed."""

    def value_dropped(self) -> None:
        """A dead letter went out without its value (too large even with shrunk headers)."""

    def dependency_wait(self, dependency: str, held: int, count: bool = True) -> None:
        """``held`` events wait on ``dependency`` now; ``count``: one more began waiting."""

    def flush(self) -> None:
        """Apply what was gathered."""
