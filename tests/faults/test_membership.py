"""Group membership: static members (KIP-345) and the KIP-848 consumer protocol, via the CLI.

Static: a SIGKILLed member restarted with the same ``--instance-id`` gets its partitions back
at once, without waiting out the dead member's session (45 s, librdkafka's default, which
this test keeps); without an instance id the restart waits for that session. Two processes
with one instance id: the broker fences one, which says so in one line and exits non-zero.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic

from tests.faults.harness import (
    SteadyProducer,
    journal_service,
    kill_and_record,
    log_events,
    wait_seen,
)
from tests.faults.verifier import read_journal, verify
from tests.integration.helpers import Service, wait_until

pytestmark = pytest.mark.kafka

RESUME_BOUND = 5.0  # seconds from the restart to the first record it handles (issue 16)
DEFAULT_SESSION = {"STREAMKIT_KAFKA": "{}"}  # librdkafka's 45 s session, not the suite's 6 s
CONSUMER = ["--group-protocol", "consumer"]


def _first_handled_by(out: Path, pid: int, started: float, timeout: float) -> float:
    """Seconds from ``started`` until process ``pid`` journalled its first record."""
    wait_until(lambda: any(s.pid == pid for s in read_journal(out)), timeout,
               f"process {pid} to handle a record", every=0.05)  # fmt: skip
    return time.monotonic() - started


@pytest.mark.timeout(90)
def test_a_static_member_restarted_after_sigkill_resumes_within_seconds(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    # Contract: with --instance-id, a SIGKILLed member's replacement handles records within
    # 5 s of its start although the dead member's session (45 s) has not expired; nothing is
    # lost and key order holds; repeats only at or after the commits of the kill.
    topic, group, out = make_topic("static", partitions=4), f"g-{unique}", tmp_path / "j.txt"
    producer = SteadyProducer(kafka_bootstrap, topic, rate=300, keys=20)
    producer.start()
    static = ["--instance-id", f"pod-{unique}"]
    first = journal_service(kafka_bootstrap, group, topic, out, extra=static, env=DEFAULT_SESSION)
    first.wait_ready(30)
    wait_until(lambda: len(read_journal(out)) >= 300, 30, "progress before the kill")
    crash = kill_and_record(first, kafka_bootstrap, group, topic, 4, out)
    started = time.monotonic()
    second = journal_service(kafka_bootstrap, group, topic, out, extra=static, env=DEFAULT_SESSION)
    resumed = _first_handled_by(out, second.proc.pid, started, 30)
    print(f"static member: handling resumed {resumed:.2f} s after the restart")
    produced = producer.results()
    wait_seen(out, produced, 60)
    assert second.stop(30) == 0
    verify("static member SIGKILL + restart", produced, read_journal(out),
           crashes=[crash]).check()  # fmt: skip
    assert resumed <= RESUME_BOUND, f"handling resumed after {resumed:.1f} s"


@pytest.mark.timeout(90)
def test_a_dynamic_member_restarted_after_sigkill_resumes_after_its_session(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    # Contract: without an instance id the restart works too, once the dead member's session
    # (6 s here, the fault suite's) ran out: nothing lost, key order kept.
    topic, group, out = make_topic("dynamic", partitions=4), f"g-{unique}", tmp_path / "j.txt"
    producer = SteadyProducer(kafka_bootstrap, topic, rate=300, keys=20)
    producer.start()
    first = journal_service(kafka_bootstrap, group, topic, out)
    first.wait_ready(30)
    wait_until(lambda: len(read_journal(out)) >= 300, 30, "progress before the kill")
    crash = kill_and_record(first, kafka_bootstrap, group, topic, 4, out)
    started = time.monotonic()
    second = journal_service(kafka_bootstrap, group, topic, out)
    resumed = _first_handled_by(out, second.proc.pid, started, 40)
    print(f"dynamic member: handling resumed {resumed:.2f} s after the restart (session 6 s)")
    produced = producer.results()
    wait_seen(out, produced, 60)
    assert second.stop(30) == 0
    verify("dynamic member SIGKILL + restart", produced, read_journal(out),
           crashes=[crash]).check()  # fmt: skip


def _fenced_line(service: Service) -> str:
    lines = [ln for ln in service.log.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("protocol", "fenced_one"),
    [([], "first"), (CONSUMER, "second")],
    ids=["classic: the newcomer fences the first", "consumer: the newcomer is refused"],
)
def test_two_processes_with_one_instance_id_one_exits_with_one_line(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path,
    protocol: list[str], fenced_one: str,
) -> None:  # fmt: skip
    # Contract: a second process given the same --instance-id makes the broker fence one of
    # them (classic: the older; KIP-848: the newer). That one says so in one line and exits
    # non-zero; the other keeps handling.
    topic, group, out = make_topic("twin", partitions=2), f"g-{unique}", tmp_path / "j.txt"
    extra = ["--instance-id", "twin-0", *protocol]
    env = {**DEFAULT_SESSION, "STREAMKIT_SHUTDOWN_TIMEOUT": "2"}
    first = journal_service(kafka_bootstrap, group, topic, out, extra=extra, env=env)
    first.wait_ready(30)
    second = journal_service(kafka_bootstrap, group, topic, out, extra=extra, env=env)
    fenced, other = (first, second) if fenced_one == "first" else (second, first)
    code = fenced.wait(30)
    line = _fenced_line(fenced)
    print(f"fenced process exited {code}: {line}")
    assert code == 2, fenced.log.read_text()[-2000:]
    assert line.startswith("streamkit: error: consumer fenced, group"), line
    assert "instance id 'twin-0'" in line and "Traceback" not in fenced.log.read_text()
    assert other.proc.poll() is None, "the other process must keep running"
    assert other.stop(30) == 0


def _assigned_sets(service: Service, topic: str) -> list[dict[str, set[int]]]:
    """Per `partitions assigned` log line of ``service``: topic -> partition numbers."""
    found = []
    for event in log_events(service):
        if event.get("event") == "partitions assigned" and event.get("partitions"):
            per_topic: dict[str, set[int]] = {}
            for name in event["partitions"]:
                t, _, n = name.rpartition("[")
                per_topic.setdefault(t, set()).add(int(n.rstrip("]")))
            found.append(per_topic)
    return found


@pytest.mark.timeout(120)
def test_consumer_protocol_member_joins_and_leaves_nothing_lost_order_kept(
    kafka_bootstrap: str, make_topic, admin, unique: str, tmp_path: Path
) -> None:
    # Contract: with --group-protocol consumer (KIP-848, incremental) a stream keeps being
    # handled while a second member joins and leaves again (SIGTERM): nothing lost, nothing
    # handled twice (a clean hand-off commits first), key order kept; the broker's range
    # assignor gives the joining member partition N of the source and of its retry tier.
    topic, group, out = make_topic("kip848", partitions=4), f"g-{unique}", tmp_path / "j.txt"
    tier = f"{topic}.{group}.retry.1"  # the journal service's one retry tier (cleaned up)
    admin.create_topics([NewTopic(tier, 4, 1)])[tier].result(30)
    producer = SteadyProducer(kafka_bootstrap, topic, rate=300, keys=20)
    producer.start()
    first = journal_service(kafka_bootstrap, group, topic, out, extra=CONSUMER,
                            env=DEFAULT_SESSION)  # fmt: skip
    first.wait_ready(30)
    wait_until(lambda: len(read_journal(out)) >= 200, 30, "progress before the join")
    second = journal_service(kafka_bootstrap, group, topic, out, extra=CONSUMER,
                             env=DEFAULT_SESSION)  # fmt: skip
    _first_handled_by(out, second.proc.pid, time.monotonic(), 40)
    seen = len(read_journal(out))
    wait_until(lambda: len(read_journal(out)) >= seen + 300, 30, "both members handling")
    assert second.stop(30) == 0, second.log.read_text()[-2000:]
    seen = len(read_journal(out))
    wait_until(lambda: len(read_journal(out)) >= seen + 300, 40, "the first member alone")
    produced = producer.results()
    wait_seen(out, produced, 60)
    assert first.stop(30) == 0
    verify("KIP-848 join + leave", produced, read_journal(out)).check()
    # Incremental: the first member gave up only what moved, and kept handling the rest.
    revoked = [e["partitions"] for e in log_events(first) if e.get("event") == "partitions revoked"]
    assert any(0 < len(parts) < 8 for parts in revoked), revoked  # the last: at its stop
    joined = _assigned_sets(second, topic)
    assert joined, "the second member logged no assignment"
    assert joined[0].get(topic) and joined[0].get(tier) == joined[0][topic], joined[0]
