"""Exactly-once mode: a second commit owner that commits offsets inside Kafka transactions.

Everything a batch of events produces -- ``ctx.publish`` records, retry-tier and DLQ
records -- and the source offsets are committed in one transaction per commit interval:
``begin_transaction`` -> produce -> ``send_offsets_to_transaction`` -> ``commit_transaction``.
One transactional producer per process (KIP-447: the consumer group metadata fences
zombies, so no producer per partition).

A transaction may only hold the outputs of events that are done, or a crash after its
commit would run those events again and double their outputs. So the worker quiesces at
each commit point (stops taking records, waits for in-flight work, bounded) and this owner
refuses to commit a transaction while anything is still in flight: it aborts instead, and
the worker rewinds to the committed offsets -- the aborted work is done again, its outputs
never visible to ``read_committed`` readers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streamkit.consumer.commits import KafkaCommits, PartitionKey
from streamkit.consumer.state import Load
from streamkit.errors import TransactionFencedError
from streamkit.retry.topics import Tier

log = structlog.get_logger("streamkit.transactions")

RETRIES = 3  # a retriable commit error is tried again this often before aborting


class TransactionalCommits(KafkaCommits):
    """Offsets and outputs committed atomically; aborts rewind to the last commit."""

    quiesce = True  # the worker drains in-flight work before each commit point

    def __init__(
        self,
        tiers: dict[str, Tier],
        load: Load,
        *,
        producer: Any,
        timeout: float,
        on_transaction: Callable[[str, float], None] = lambda outcome, seconds: None,
        group: str = "",
        failed: Callable[[], bool] = lambda: False,
        refused: Callable[[], int] = lambda: 0,
    ) -> None:
        super().__init__(tiers, load, group=group)
        self._producer = producer  # the confluent-kafka producer with a transactional.id
        self._timeout = timeout
        self._on_transaction = on_transaction
        self._producer_failed = failed  # the producer reported a fatal error (fenced) on its own
        self._refused = refused  # how many sends the producer refused with _STATE so far
        self._refused_before = 0  # ... when the open transaction began
        self._started = time.monotonic()
        self.fatal: TransactionFencedError | None = None
        self.rewind_needed = False  # an abort happened: states and positions must reset

    def start(self) -> None:
        """``init_transactions`` once (fences an earlier process with the same id), begin."""
        try:
            self._producer.init_transactions(self._timeout)
        except KafkaException as exc:
            raise TransactionFencedError(
                f"cannot start transactions: {exc.args[0].str()}"
            ) from None
        self._begin()

    def check_fatal(self) -> TransactionFencedError | None:
        """The fatal error, also one the producer hit while sending (checked while waiting)."""
        if self.fatal is None and self._producer_failed():
            self.fatal = TransactionFencedError(
                "producer fenced: another process uses this transactional.id; stopping "
                "without producing outside a transaction"
            )
        return self.fatal

    @property
    def doomed(self) -> bool:
        """A send failed in the open transaction: librdkafka will only let it abort.

        A failed delivery makes the transaction abortable and every later send is refused
        (``_STATE``), so the work still in flight can never finish: the commit point
        aborts at once instead of waiting for it.
        """
        return self._refused() > self._refused_before

    def commit_due(self) -> None:
        """Nothing here: commits happen at the worker's quiesced commit points only."""

    def commit_sync(self, offsets: list[TopicPartition]) -> bool:
        """Commit the open transaction with ``offsets`` if every event taken is done."""
        if self.fatal is not None:
            return False
        if self.doomed:
            self._abort("a send failed in this transaction; librdkafka refuses the rest")
            return False
        if self._load.buffered or self._load.acks:
            self._abort("events still in flight at the commit point")
            return False
        if not offsets:
            return True  # nothing handled since the last commit: nothing was produced
        for attempt in range(RETRIES):
            try:
                return self._commit(offsets)
            except KafkaException as exc:
                if not self._recoverable(exc.args[0], attempt):
                    return False
        self._abort("commit kept failing")
        return False

    def abort(self, why: str) -> None:
        """Abort the open transaction (poll thread); the caller rewinds the partitions."""
        if self.fatal is None:
            self._abort(why)

    def seek_committed(self, partitions: Iterable[PartitionKey], timeout: float = 0.0) -> None:
        """After an abort: read every partition again from its committed offset (poll thread)."""
        super().seek_committed(partitions, timeout or self._timeout)
        self.rewind_needed = False

    def on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Offsets go with the transaction: the consumer commits nothing itself."""

    # -- internals ---------------------------------------------------------------------

    def _commit(self, offsets: list[TopicPartition]) -> bool:
        consumer = self._committer()
        metadata = consumer.consumer_group_metadata()  # type: ignore[attr-defined]
        self._producer.send_offsets_to_transaction(offsets, metadata, self._timeout)
        self._producer.commit_transaction(self._timeout)
        for tp in offsets:
            state = self.states.get((tp.topic, tp.partition))
            if state is not None:
                state.tracker.committed = tp.offset
        self._on_transaction("committed", time.monotonic() - self._started)
        self._begin()
        return True

    def _recoverable(self, err: KafkaError, attempt: int) -> bool:
        """True to try the commit again; else the transaction was aborted or is fatal."""
        if err.fatal() or err.code() in _FENCED:
            self.fatal = TransactionFencedError(
                f"producer fenced ({err.name()}): another process uses this transactional.id,"
                " or this one was too slow; stopping without producing outside a transaction"
            )
            log.error("transaction fenced", error=err.str(), code=err.name())
            return False
        if err.txn_requires_abort():
            self._abort(f"{err.name()}: {err.str()}")
            return False
        log.warning("transaction commit failed; trying again", error=err.str(), attempt=attempt)
        return bool(err.retriable())

    def _abort(self, why: str) -> None:
        log.warning("transaction aborted; partitions rewind to the committed offsets", reason=why)
        try:
            self._producer.abort_transaction(self._timeout)
        except KafkaException as exc:
            if exc.args[0].fatal():
                self.fatal = TransactionFencedError(f"abort failed: {exc.args[0].str()}")
                return
        self._on_transaction("aborted", time.monotonic() - self._started)
        self.rewind_needed = True
        self._begin()

    def _begin(self) -> None:
        self._producer.begin_transaction()
        self._started = time.monotonic()
        self._refused_before = self._refused()


_FENCED = {
    KafkaError._FENCED,
    KafkaError.PRODUCER_FENCED,
    KafkaError.INVALID_PRODUCER_EPOCH,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
}
