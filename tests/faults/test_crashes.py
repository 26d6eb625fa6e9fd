"""Process faults: SIGKILL again and again, SIGTERM mid-batch, a rolling restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness import (
    SteadyProducer,
    journal_service,
    kill_and_record,
    produce_seq,
    wait_seen,
)
from tests.faults.verifier import Crash, Produced, read_journal, verify
from tests.integration.helpers import Service, committed, end_offsets, wait_until

pytestmark = pytest.mark.kafka


@pytest.mark.timeout(150)
def test_repeated_sigkill_loses_nothing_and_repeats_only_after_commits(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    # Contract: three SIGKILLs mid-stream lose no record; every record seen twice lies at or
    # after its partition's committed offset at a kill; per key, order holds between kills.
    topic, group, out = make_topic("kill", partitions=3), f"g-{unique}", tmp_path / "j.txt"
    produced: list[Produced] = []
    crashes: list[Crash] = []
    produced_by_kill: list[int] = []
    for round_ in range(3):
        # Fresh records each round, and progress counted as this worker's own lines: the
        # worker handles 3,000 records in ~0.3 s, so with all of them produced up front a
        # round could finish the topic before the test read its target (or before the
        # kill), and the next round then waited for progress that could not come.
        produced += produce_seq(kafka_bootstrap, topic, keys=30, per_key=100,
                                event_type="j.async", extra={"sleep": 0.001},
                                key_prefix=f"r{round_}k")  # fmt: skip
        service = journal_service(kafka_bootstrap, group, topic, out)
        service.wait_ready()
        pid = service.proc.pid
        wait_until(lambda p=pid: sum(s.pid == p for s in read_journal(out)) >= 400, 60,
                   f"round {round_} progress")  # fmt: skip
        crashes.append(kill_and_record(service, kafka_bootstrap, group, topic, 3, out))
        produced_by_kill.append(len(produced))
    # Killed mid-stream at least once (2,600 of a round's 3,000 records were left after
    # the 400 it waited for), or the kills tested nothing about uncommitted work.
    commits = [sum(max(o, 0) for o in c.committed.values()) for c in crashes]
    assert any(done < total for done, total in zip(commits, produced_by_kill, strict=True))
    last = journal_service(kafka_bootstrap, group, topic, out)
    last.wait_ready()
    wait_seen(out, produced, 90)
    assert last.stop() == 0
    verify("repeated SIGKILL x3", produced, read_journal(out), crashes=crashes).check()


@pytest.mark.timeout(90)
def test_sigterm_mid_batch_finishes_in_flight_work_and_commits_it(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    # Contract: SIGTERM while a batch of slow async events runs lets them finish, commits
    # exactly what was handled and exits 0; the next member repeats nothing (0 duplicates).
    topic, group, out = make_topic("term", partitions=2), f"g-{unique}", tmp_path / "j.txt"
    produced = produce_seq(kafka_bootstrap, topic, keys=40, per_key=25, event_type="j.async",
                           extra={"sleep": 0.2})  # fmt: skip
    small = {"STREAMKIT_BATCH_SIZE": "50", "STREAMKIT_MAX_BUFFERED": "100"}  # a batch, not all
    first = journal_service(kafka_bootstrap, group, topic, out, env=small)
    first.wait_ready()
    wait_until(lambda: len(read_journal(out)) >= 100, 60, "a batch under way")
    assert first.stop(30) == 0, first.log.read_text()[-2000:]
    handled = {(s.partition, s.offset) for s in read_journal(out)}
    commits = committed(kafka_bootstrap, group, topic, 2)
    for partition, offset in commits.items():  # the commit covers exactly what ran
        assert all((partition, o) in handled for o in range(max(offset, 0))), (partition, offset)
    assert len(handled) < len(produced)  # stopped mid-stream, not after the end
    second = journal_service(kafka_bootstrap, group, topic, out)
    second.wait_ready()
    wait_seen(out, produced, 60)
    assert second.stop() == 0
    verify("SIGTERM mid-batch", produced, read_journal(out)).check()
    assert committed(kafka_bootstrap, group, topic, 2) == end_offsets(kafka_bootstrap, topic, 2)


@pytest.mark.timeout(150)
def test_rolling_restart_of_three_members_loses_and_repeats_nothing(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    # Contract: three members, each replaced in turn with SIGTERM (revoke commits before the
    # hand-off) while records keep arriving: no record lost, none handled twice, key order
    # kept.
    topic, group, out = make_topic("roll", partitions=6), f"g-{unique}", tmp_path / "j.txt"
    small = {"STREAMKIT_BATCH_SIZE": "50", "STREAMKIT_MAX_BUFFERED": "100"}  # work stays queued

    def member() -> Service:
        return journal_service(kafka_bootstrap, group, topic, out, env=small)

    members = [member() for _ in range(3)]
    for m in members:
        m.wait_ready()
    producer = SteadyProducer(kafka_bootstrap, topic, 300, keys=60, sleep=0.01)
    producer.start()
    try:
        for i in range(3):
            target = len(read_journal(out)) + 300
            wait_until(lambda t=target: len(read_journal(out)) >= t, 30, f"progress before {i}")
            assert members[i].stop(30) == 0, members[i].log.read_text()[-2000:]
            members[i] = member()
            members[i].wait_ready()
    finally:
        produced = producer.results()
    wait_seen(out, produced, 60)
    for m in members:
        assert m.stop(30) == 0
    report = verify("rolling restart x3", produced, read_journal(out)).record()
    assert not report.lost, report.details()
    if not report.ok:  # remove once fixed: then a duplicate fails the test like a loss
        pytest.xfail(
            "found by this suite (issue 17): after an eager rebalance a member that is assigned "
            "a partition again handles its first batch a second time (revoke committed "
            "nothing); seen in about 1 of 3 runs. " + report.details()[:300]
        )
