"""The exactly-once commit point: quiesce, commit the transaction (or abort and rewind).

A transaction may hold only outputs of done events, so no record is taken while the
in-memory work drains; then the transaction commits. After an abort every partition is
read again from its committed offset.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from confluent_kafka import TopicPartition

from streamkit.consumer.commits import PartitionKey
from streamkit.consumer.pollthread import PollThread
from streamkit.consumer.state import NO_CUT, PartitionState, disown, drain
from streamkit.consumer.transactional import TransactionalCommits

# How long a commit point waits for in-memory work before it aborts (and the work is
# done again); well inside max.poll.interval.ms (300 s), polling goes on meanwhile.
QUIESCE_LIMIT = 120.0
# A drain still going after this long has a backlog in memory: it is cut (see _cut).
# Fast handlers drain in milliseconds and never pay the re-read of a cut.
CUT_AFTER = 0.5


class CommitPoint:
    """Runs one exactly-once commit point for a worker."""

    def __init__(
        self,
        *,
        commits: TransactionalCommits,
        poll: PollThread,
        detached: Callable[[PartitionState], None],
    ) -> None:
        self._commits = commits
        self._poll = poll
        self._detached = detached

    async def run(self) -> None:
        """Quiesce, commit (or abort and rewind); raises if the producer is fenced.

        No poll happens while the in-memory work drains, so no record is taken that the
        transaction could not hold; heartbeats go on in librdkafka's own thread, and the
        drain is bounded well inside ``max.poll.interval.ms``.
        """
        commits = self._commits
        if commits.fatal is not None:  # fenced in a rebalance callback: stop, commit nothing
            raise commits.fatal
        states = list(commits.states.values())
        if await self._quiesce(states):
            await self._poll.call(commits.commit_sync, commits.positions(states))
            if commits.fatal is None and not commits.rewind_needed:
                await self._reread([s for s in states if s.cut != NO_CUT and s.tracker.pending])
            for state in states:
                state.cut = NO_CUT
        else:
            # Work that cannot finish (a send failed: doomed) or did not in time. It is
            # stopped before the abort: run on, it would publish into the next transaction.
            keys = await self._abandon()
            await self._poll.call(commits.abort, "work in flight cannot be committed")
            await self._reassign(keys)
        if commits.fatal is not None:
            raise commits.fatal
        if commits.rewind_needed:  # the commit itself failed and was aborted
            await self._reassign(await self._abandon())

    async def _quiesce(self, states: list[PartitionState]) -> bool:
        """Wait for in-flight work; False if it cannot finish (doomed) or ran out of time."""
        commits = self._commits
        drained = asyncio.ensure_future(drain(states, QUIESCE_LIMIT))
        cut_at = time.monotonic() + CUT_AFTER
        while not drained.done():
            await asyncio.wait([drained], timeout=0.05)
            if cut_at and time.monotonic() >= cut_at:
                _cut(states)
                cut_at = 0.0
            fatal = commits.check_fatal()  # fenced while its work waits: never finishes
            if fatal is not None:
                drained.cancel()
                raise fatal
            if commits.doomed:  # its sends are refused: it can only be aborted
                drained.cancel()
                return False
        return not drained.result()

    async def _abandon(self) -> list[PartitionKey]:
        """Take every partition out (revoked: nothing of it starts again), stop its work."""
        commits = self._commits
        keys = list(commits.states)
        old = commits.detach(keys)
        for state in old:
            self._detached(state)
        await drain(old, 0)  # cancels its tasks; queued jobs are dropped (revoked)
        for state in old:
            disown(state)
        return keys

    async def _reread(self, dropped: list[PartitionState]) -> None:
        """Partitions whose jobs above the cut were dropped: fresh states, from the cut."""
        if not dropped:
            return
        commits = self._commits
        keys = [(s.topic, s.partition) for s in dropped]
        offsets = [TopicPartition(s.topic, s.partition, s.tracker.position) for s in dropped]
        for state in commits.detach(keys):  # nothing of theirs runs: all below the cut is done
            self._detached(state)
            disown(state)
        commits.assign(keys)
        await self._poll.call(commits.seek_to, offsets)

    async def _reassign(self, keys: list[PartitionKey]) -> None:
        """Fresh states, read again from the committed offsets."""
        commits = self._commits
        commits.assign(keys)
        await self._poll.call(commits.seek_committed, keys)


def _cut(states: list[PartitionState]) -> None:
    """Bound the drain to work already handed to handlers (a deep backlog is in memory).

    A queued job at or above its partition's cut is dropped (not done) and read again
    after the commit. Every offset below the cut was started or is done, none above: the
    transaction holds exactly the outputs of the offsets it commits. Without it a slow
    key's backlog drained whole here, past ``transaction.timeout.ms`` (then fenced).
    """
    for state in states:
        state.cut = max(state.started + 1, state.tracker.position)
