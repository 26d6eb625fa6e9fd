"""The exactly-once commit point: quiesce, commit the transaction, resume (or rewind).

A transaction may hold only outputs of done events, so every partition is paused while
polling goes on (the member stays in the group), in-memory work drains, the transaction
commits and fetching resumes. Records a poll returns meanwhile are held and handled after
the commit, never dropped. After an abort every partition is read again from its commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from streamkit.consumer.flow import FlowControl
from streamkit.consumer.pollthread import PollThread
from streamkit.consumer.state import PartitionState, drain
from streamkit.consumer.transactional import TransactionalCommits
from streamkit.record import Record

# How long a commit point waits for in-memory work before it aborts (and the work is
# done again); well inside max.poll.interval.ms (300 s), polling goes on meanwhile.
QUIESCE_LIMIT = 120.0


class CommitPoint:
    """Runs one exactly-once commit point for a worker."""

    def __init__(
        self,
        *,
        commits: TransactionalCommits,
        flow: FlowControl,
        poll: PollThread,
        fetch: Callable[[float], list[Record]],
        dispatch: Callable[[list[Record]], None],
        detached: Callable[[PartitionState], None],
    ) -> None:
        self._commits = commits
        self._flow = flow
        self._poll = poll
        self._fetch = fetch  # the worker's poll (in the poll thread)
        self._dispatch = dispatch
        self._detached = detached

    async def run(self) -> None:
        """Quiesce, commit (or abort and rewind), resume; raises if the producer is fenced."""
        commits = self._commits
        if commits.fatal is not None:  # fenced in a rebalance callback: stop, commit nothing
            raise commits.fatal
        states = list(commits.states.values())
        self._flow.pause_all(states)
        fetched = await self._while_polling(drain(states, QUIESCE_LIMIT))
        await self._poll.call(commits.commit_sync, commits.positions(states))
        if commits.fatal is not None:
            raise commits.fatal
        if commits.rewind_needed:
            await self._rewind()
            fetched = []  # read again from the committed offsets
        self._flow.resume_all(list(commits.states.values()))
        # A partition revoked (or re-assigned) during the wait is read again from its
        # commit: what was fetched for its old assignment must not be handled now.
        current = commits.states
        held = [r for r, s in fetched if s is not None and current.get(_key(r)) is s]
        if held:
            self._dispatch(held)

    async def _while_polling(
        self, work: Awaitable[Any]
    ) -> list[tuple[Record, PartitionState | None]]:
        """Poll until ``work`` is done; keep what comes with the state it came for."""
        task = asyncio.ensure_future(work)
        held: list[tuple[Record, PartitionState | None]] = []
        states = self._commits.states
        while not task.done():
            for r in await self._poll.call(self._fetch, 0.01):
                held.append((r, states.get((r.topic(), r.partition()))))
            if self._commits.fatal is not None:  # fenced in a rebalance while we waited
                task.cancel()
                raise self._commits.fatal
        await task
        return held

    async def _rewind(self) -> None:
        commits = self._commits
        keys = list(commits.states)
        for state in commits.detach(keys):
            self._detached(state)
        commits.assign(keys)
        await self._poll.call(commits.seek_committed, keys)


def _key(record: Record) -> tuple[str, int]:
    return (record.topic(), record.partition())
