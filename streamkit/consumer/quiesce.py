"""The exactly-once commit point: quiesce, commit the transaction (or abort and rewind).

A transaction may hold only outputs of done events, so no record is taken while the
in-memory work drains; then the transaction commits. After an abort every partition is
read again from its committed offset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from streamkit.consumer.pollthread import PollThread
from streamkit.consumer.state import PartitionState, drain
from streamkit.consumer.transactional import TransactionalCommits

# How long a commit point waits for in-memory work before it aborts (and the work is
# done again); well inside max.poll.interval.ms (300 s), polling goes on meanwhile.
QUIESCE_LIMIT = 120.0


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
        drained = asyncio.ensure_future(drain(states, QUIESCE_LIMIT))
        while not drained.done():
            await asyncio.wait([drained], timeout=0.2)
            fatal = commits.check_fatal()  # fenced while its work waits: never finishes
            if fatal is not None:
                drained.cancel()
                raise fatal
        await self._poll.call(commits.commit_sync, commits.positions(states))
        if commits.fatal is not None:
            raise commits.fatal
        if commits.rewind_needed:
            await self._rewind()

    async def _rewind(self) -> None:
        commits = self._commits
        keys = list(commits.states)
        for state in commits.detach(keys):
            self._detached(state)
        commits.assign(keys)
        await self._poll.call(commits.seek_committed, keys)
