"""At-least-once with ``ctx.emit``: confirm the emitted records in bulk, then commit.

An emitted record has no delivery report of its own (``streamkit.producer.emitter``), so
its input counts as done when the handler returns. What keeps at-least-once is the order
at each commit point:

1. take each partition's position (the lowest offset not done; every input below it has
   returned, so every record it emitted was already handed to the producer);
2. wait for every record emitted so far (a flush, in the poll thread; no poll meanwhile);
3. a record emitted untraced (the usual case: no callback of its own) that failed has
   no known input: nothing is committed, every partition is read again from its last
   commit (fresh states, work in flight dropped), and the emitter traces each record
   until that work is committed again;
4. a traced record that failed names its input: that partition commits no further than
   it and is read again from there; the input, when read again, goes down the failure
   path with the delivery's error instead of running again (retry tier or DLQ: a record
   the broker refuses for good never loops);
5. commit the rest.

A revoke and the shutdown commit the same way, blocking (:meth:`commit_sync`). A worker
that never emits commits exactly as :class:`~streamkit.consumer.commits.KafkaCommits`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import structlog
from confluent_kafka import TopicPartition

from streamkit.consumer.commits import KafkaCommits, PartitionKey
from streamkit.consumer.pollthread import PollThread
from streamkit.consumer.state import Load, PartitionState, disown, drain
from streamkit.delivery import Confirmation
from streamkit.retry.topics import Tier

log = structlog.get_logger("streamkit.commits")

Failed = dict[PartitionKey, dict[int, BaseException]]


class Confirming(Protocol):
    """What confirms emitted records (:class:`~streamkit.producer.emitter.Emitter`)."""

    @property
    def active(self) -> bool:
        """True once anything was emitted."""
        ...

    def confirm(self, timeout: float) -> Confirmation:
        """Wait for every record emitted so far; which inputs' records failed."""
        ...

    def trace(self, on: bool) -> None:
        """Name each record's input from now on (``on``), or stop."""


class ConfirmedCommits(KafkaCommits):
    """:class:`KafkaCommits` that confirms emitted records before every commit."""

    def __init__(
        self,
        tiers: dict[str, Tier],
        load: Load,
        *,
        confirmer: Confirming,
        timeout: float,
        on_result: Callable[[str], None] = lambda outcome: None,
        group: str = "",
    ) -> None:
        super().__init__(tiers, load, on_result=on_result, group=group)
        self._confirmer = confirmer
        self._timeout = timeout
        # Failures a revoke's confirmation found for partitions still ours: the next
        # commit point rewinds them (every partition, for an untraced one).
        self._carried: Failed = {}
        self._untraced: BaseException | None = None
        # After an untraced failure: each partition read again -> the offset its commit
        # must reach before the emitter stops tracing (one past the highest seen then).
        self._tracing: dict[PartitionKey, int] = {}

    async def commit_point(
        self, poll: PollThread, detached: Callable[[PartitionState], None]
    ) -> None:
        """The periodic commit (loop thread): confirm, rewind what failed, commit."""
        if not self._confirmer.active and not self._carried and self._untraced is None:
            self.commit_due()
            return
        snapshot = [(s, s.tracker.position) for s in self.states.values()]
        confirmation = await poll.call(self._confirmer.confirm, self._timeout)
        untraced = confirmation.untraced or self._untraced
        if untraced is not None:  # whose input, unknown: everything is read again
            await self._rewind_all(poll, detached, untraced)
            return
        failed = self._merged(confirmation.failed)
        offsets, rewinds = [], []
        for state, position in snapshot:
            if state.revoked:  # revoked meanwhile: its revoke committed it
                continue
            bad = _live(failed.pop((state.topic, state.partition), None), state)
            if bad:
                position = min(bad) if position < 0 else min(position, *bad)
                rewinds.append((state, position, bad))
            if confirmation.complete and position > state.tracker.committed:
                offsets.append(TopicPartition(state.topic, state.partition, position))
        _not_ours(failed)
        if not confirmation.complete:
            log.warning("emitted records not confirmed in time; not committing yet",
                        timeout_s=self._timeout)  # fmt: skip
        self.commit_async(offsets)
        self._trace_while_behind()
        for state, position, bad in rewinds:
            await self._rewind(poll, detached, state, position, bad)

    def commit_sync(self, offsets: list[TopicPartition]) -> bool:
        """A revoke's or the shutdown's commit (poll thread): confirm first, blocking."""
        if self._confirmer.active or self._carried:
            confirmation = self._confirmer.confirm(self._timeout)
            failed = self._merged(confirmation.failed)
            self._untraced = confirmation.untraced or self._untraced
            if self._untraced is not None:  # the next owner reads them again
                self._carried = failed
                log.warning("an emitted record failed, its input unknown; nothing "
                            "committed", error=str(self._untraced))  # fmt: skip
                return False
            if not confirmation.complete:
                self._carried = failed
                log.warning("emitted records not confirmed in time; their inputs are not "
                            "committed (handled again)", timeout_s=self._timeout)  # fmt: skip
                return False
            offsets = self._clamped(offsets, failed)
            self._carried = failed  # partitions still ours: the next commit point
        return super().commit_sync(offsets)

    def _merged(self, new: Failed) -> Failed:
        merged, self._carried = self._carried, {}
        for key, errors in new.items():
            merged.setdefault(key, {}).update(errors)
        return merged

    def _clamped(self, offsets: list[TopicPartition], failed: Failed) -> list[TopicPartition]:
        """No further than the first failed input of each partition; the next owner reads
        it again from there (and runs its handler again)."""
        out = []
        for tp in offsets:
            state = self.states.get((tp.topic, tp.partition))
            bad = failed.pop((tp.topic, tp.partition), None)
            bad = _live(bad, state) if state is not None else bad
            if bad:
                _say_failed(tp.topic, tp.partition, bad)
                tp = TopicPartition(tp.topic, tp.partition, min(tp.offset, *bad))
            out.append(tp)
        return out

    async def _rewind_all(
        self,
        poll: PollThread,
        detached: Callable[[PartitionState], None],
        error: BaseException,
    ) -> None:
        """An untraced record failed: commit nothing, read every partition again from its
        last commit, and trace each record until that work is committed again."""
        keys = list(self.states)
        log.warning("an emitted record failed, its input unknown: every partition read "
                    "again from its last commit, its records traced", error=str(error),
                    partitions=len(keys))  # fmt: skip
        self._untraced, self._carried = None, {}  # all of it is done again
        self._confirmer.trace(True)
        old = self.detach(keys)
        for state in old:
            detached(state)
            if state.tracker.seen > state.tracker.committed:  # work to read again
                self._tracing[(state.topic, state.partition)] = state.tracker.seen
        await drain(old, 0)  # cancels their tasks: their events are read again
        for state in old:
            disown(state)
        self.assign(keys)
        await poll.call(self.seek_committed, keys, self._timeout)

    def _trace_while_behind(self) -> None:
        """Stop tracing once every partition read again is committed past where it was."""
        if not self._tracing:
            return
        for key, seen in list(self._tracing.items()):
            state = self.states.get(key)
            if state is None or state.tracker.committed >= seen:
                del self._tracing[key]
        if not self._tracing:
            self._confirmer.trace(False)

    async def _rewind(
        self,
        poll: PollThread,
        detached: Callable[[PartitionState], None],
        state: PartitionState,
        offset: int,
        failed: dict[int, BaseException],
    ) -> None:
        """Read ``state``'s partition again from ``offset``, its work in flight dropped."""
        key = (state.topic, state.partition)
        _say_failed(state.topic, state.partition, failed)
        for old in self.detach([key]):
            detached(old)
            await drain([old], 0)  # cancels its tasks: their events are read again
            disown(old)
        for fresh in self.assign([key]):
            fresh.failed_outputs = dict(failed)
        await poll.call(self.seek_to, [TopicPartition(state.topic, state.partition, offset)])


def _live(
    failed: dict[int, BaseException] | None, state: PartitionState
) -> dict[int, BaseException]:
    """The failures at or past what this member committed; one below it was emitted after
    its input was committed (by a thread the handler left running): said, not undone."""
    if not failed:
        return {}
    committed = state.tracker.committed
    late = [offset for offset in failed if offset < committed]
    if late:
        log.error("emitted record failed after its input was committed; emit from the "
                  "handler itself, before it returns", topic=state.topic,
                  partition=state.partition, offsets=late)  # fmt: skip
    return {o: e for o, e in failed.items() if o >= committed}


def _not_ours(failed: Failed) -> None:
    """Failures of partitions revoked since: their inputs were not committed (handled
    again by the next owner), so there is nothing to do but say so."""
    for (topic, partition), errors in failed.items():
        log.info("emitted records failed for a partition no longer ours; its next owner "
                 "handles their inputs again", topic=topic, partition=partition,
                 offsets=sorted(errors))  # fmt: skip


def _say_failed(topic: str, partition: int, failed: dict[int, BaseException]) -> None:
    first = min(failed)
    log.warning("emitted records failed; partition read again from the first failed input",
                topic=topic, partition=partition, offset=first, inputs=len(failed),
                error=str(failed[first]))  # fmt: skip
