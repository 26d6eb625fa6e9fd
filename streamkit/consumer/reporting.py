"""The worker's reports: metrics updates and log lines for what the client tells it.

Callbacks handed to the producer, the consumer, the lag watch and the commit owners; they
run on the threads those call them from (the delivery thread, the poll thread).
"""

from __future__ import annotations

import time
from collections import deque

import structlog
from confluent_kafka import KafkaError

from streamkit.consumer.state import PartitionState
from streamkit.observability.metrics import Metrics
from streamkit.observability.stats import observe_many

log = structlog.get_logger("streamkit.worker")

CLIENT_ERROR_EVERY = 30.0  # log a repeating client error (broker down) at most this often


class WorkerReports:
    """Metrics and log lines of one worker (group)."""

    def __init__(self, metrics: Metrics, group: str) -> None:
        self.metrics = metrics
        self.group = group
        self._error_seen: dict[str, float] = {}
        # The first fatal client error (a fenced static member): the worker stops on it.
        self.fatal: KafkaError | None = None
        # Latencies of acknowledged records, counted at the next flush_deliveries().
        self._acked: deque[float] = deque()

    def commit(self, outcome: str) -> None:
        """One offset commit ended (ok / failed)."""
        m = self.metrics
        m.child(m.commits, self.group, outcome).inc()

    def transaction(self, outcome: str, seconds: float) -> None:
        """Exactly-once: one transaction ended (committed / aborted) after ``seconds``."""
        m = self.metrics
        m.child(m.transactions, self.group, outcome).inc()
        m.child(m.transaction_duration, self.group).observe(seconds)

    def lag(self, topic: str, partition: int, lag: int, seconds: float) -> None:
        """Fresh lag figures of one partition."""
        self.metrics.set_partition_lag(self.group, topic, partition, lag, seconds)

    def delivery(self, outcome: str, latency: float) -> None:
        """One produced record acknowledged or failed (any thread).

        An acknowledgement is only queued: :meth:`flush_deliveries` counts them in one go
        (a metric's locks once a batch, not 1.5 µs of them per record). A failure, rare
        and worth seeing at once, is counted here.
        """
        if outcome == "ok":
            self._acked.append(latency)  # deque.append is atomic: no lock
            return
        self.metrics.child(self.metrics.produced, outcome).inc()
        self.metrics.produce_latency.observe(latency)

    def emitted(self, sent: int, failed: int) -> None:
        """``ctx.emit``'s records since the last call: ``sent`` confirmed, ``failed`` not
        (counted at commit points; an untraced failure counts one, however many failed)."""
        if sent > failed:
            self.metrics.child(self.metrics.produced, "ok").inc(sent - failed)
        if failed:
            self.metrics.child(self.metrics.produced, "failed").inc(failed)

    def flush_deliveries(self) -> None:
        """Count the acknowledgements queued since the last call (the poll loop's turn)."""
        acked = self._acked
        n = len(acked)  # appends from another thread meanwhile wait for the next call
        if not n:
            return
        latencies = [acked.popleft() for _ in range(n)]
        self.metrics.child(self.metrics.produced, "ok").inc(n)
        observe_many(self.metrics.produce_latency, latencies)

    def client_error(self, err: KafkaError) -> None:
        """librdkafka's ``error_cb``: once per connection attempt, so said once a while."""
        self._note_fatal(err)
        now = time.monotonic()
        if now - self._error_seen.get(err.name(), -CLIENT_ERROR_EVERY) < CLIENT_ERROR_EVERY:
            return
        self._error_seen[err.name()] = now
        log.warning("kafka client error", error=err.str(), code=err.name(), fatal=err.fatal())

    def record_error(self, err: KafkaError) -> None:
        """An error returned in place of a record (end of partition is none)."""
        self._note_fatal(err)
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("consume error", error=err.str(), code=err.name())

    def _note_fatal(self, err: KafkaError) -> None:
        # A fatal error leaves the consumer unable to fetch or commit: without this the
        # process would stay up, ready, and handle nothing.
        if self.fatal is None and (err.fatal() or err.code() == KafkaError._FATAL):
            self.fatal = err

    def abandoned(self, states: list[PartitionState], bound: float) -> None:
        """Shutdown reached its bound: say what is left uncommitted (handled again later)."""
        log.warning(
            "shutdown timeout reached: in-flight events abandoned, not committed",
            events=sum(s.tracker.pending for s in states),
            partitions=[f"{s.topic}[{s.partition}]" for s in states],
            timeout_s=bound,
        )
