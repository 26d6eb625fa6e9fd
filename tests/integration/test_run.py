"""`streamkit run` end to end on a real broker: all handled, crash safety, graceful stop."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.helpers import (
    STREAMKIT,
    Service,
    committed,
    end_offsets,
    produce_events,
    read_lines,
    wait_until,
)

pytestmark = pytest.mark.kafka
MODULE = "tests.integration.services.recorder"


def _orders(n: int) -> list[tuple[str, object, str]]:
    kinds = ("order.created", "order.paid", "order.note")
    events: list[tuple[str, object, str]] = []
    for i in range(n):
        kind = kinds[i % 3]
        data: object = (
            {"id": i} if kind == "order.note" else {"order_id": str(i), "amount_cents": i}
        )
        events.append((kind, data, f"k{i % 50}"))
    return events


@pytest.mark.timeout(180)
def test_ten_thousand_events_all_handled_and_committed(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    topic = make_topic("orders", partitions=3)
    group = f"g-{unique}"
    assert produce_events(kafka_bootstrap, topic, _orders(10_000)) == 10_000
    out = tmp_path / "handled.txt"
    service = Service(
        MODULE,
        bootstrap=kafka_bootstrap,
        group=group,
        topics=[topic],
        out=out,
        extra=["-X", "auto.offset.reset=earliest"],
        env={"STREAMKIT_CHECK_TOPICS": "false"},
    )
    service.wait_ready()
    wait_until(lambda: len(read_lines(out)) >= 10_000, 90, "10,000 handled events")
    ends = end_offsets(kafka_bootstrap, topic, 3)
    wait_until(lambda: committed(kafka_bootstrap, group, topic, 3) == ends, 30, "commits = ends")
    assert service.stop() == 0
    lines = read_lines(out)
    assert Counter(line[0] for line in lines) == {"created": 3334, "paid": 3333, "note": 3333}
    assert len({(line[1], line[2]) for line in lines}) == 10_000  # each record exactly once
    assert committed(kafka_bootstrap, group, topic, 3) == ends


@pytest.mark.timeout(240)
def test_sigkill_then_restart_only_repeats_events_after_the_last_commit(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    topic = make_topic("crash", partitions=3)
    group = f"g-{unique}"
    produce_events(kafka_bootstrap, topic, _orders(20_000))
    first_out, second_out = tmp_path / "first.txt", tmp_path / "second.txt"
    env = {
        "STREAMKIT_CHECK_TOPICS": "false",
        "STREAMKIT_COMMIT_INTERVAL": "0.2",
        "STREAMKIT_KAFKA": "session.timeout.ms=6000",  # the killed member leaves in seconds
    }
    first = Service(
        MODULE,
        bootstrap=kafka_bootstrap,
        group=group,
        topics=[topic],
        out=first_out,
        # ~4 s for the backlog: the kill lands half-way on any machine, after commits.
        env={**env, "STREAMKIT_TEST_PACE": "0.0002"},
    )
    first.wait_ready()

    def half_handled_and_committed() -> bool:
        if len(read_lines(first_out)) < 8_000:
            return False
        return any(offset > 0 for offset in committed(kafka_bootstrap, group, topic, 3).values())

    wait_until(half_handled_and_committed, 90, "half the events handled, some committed")
    first.kill()
    at_crash = committed(kafka_bootstrap, group, topic, 3)
    assert len(read_lines(first_out)) < 20_000, "killed after the whole backlog: not mid-way"

    second = Service(
        MODULE, bootstrap=kafka_bootstrap, group=group, topics=[topic], out=second_out, env=env
    )
    second.wait_ready()
    first_seen = {(int(p), int(o)) for _, p, o, *_ in read_lines(first_out)}

    def all_seen() -> bool:
        second_seen = {(int(p), int(o)) for _, p, o, *_ in read_lines(second_out)}
        return len(first_seen | second_seen) >= 20_000

    wait_until(all_seen, 120, "every event handled at least once")
    assert second.stop() == 0
    second_seen = [(int(p), int(o)) for _, p, o, *_ in read_lines(second_out)]
    # The restart resumes exactly at the commit: nothing before it is handled again...
    assert all(offset >= at_crash[p] for p, offset in second_seen)
    # ...so every event seen twice lies after the last commit before the crash.
    twice = first_seen & set(second_seen)
    assert all(offset >= at_crash[p] for p, offset in twice)
    assert len(first_seen | set(second_seen)) == 20_000


@pytest.mark.timeout(120)
def test_sigterm_lets_the_inflight_event_finish_and_commits_it(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    topic = make_topic("slow", partitions=1)
    group = f"g-{unique}"
    out = tmp_path / "handled.txt"
    service = Service(
        MODULE,
        bootstrap=kafka_bootstrap,
        group=group,
        topics=[topic],
        out=out,
        env={"STREAMKIT_CHECK_TOPICS": "false"},
    )
    service.wait_ready()
    produce_events(kafka_bootstrap, topic, [("order.slow", {"seconds": 2}, "k")])
    wait_until(lambda: any(line[0] == "slow-start" for line in read_lines(out)), 30, "start")
    service.signal(signal.SIGTERM)
    assert service.wait(30) == 0, service.log.read_text()[-2000:]
    assert [line[0] for line in read_lines(out)] == ["slow-start", "slow-end"]
    assert committed(kafka_bootstrap, group, topic, 1) == {0: 1}


def _run_cli(*args: str, timeout: float = 60) -> tuple[int, str]:
    import os
    import subprocess

    env = {**os.environ, "STREAMKIT_CONNECT_TIMEOUT": "3"}
    done = subprocess.run(
        [STREAMKIT, *args], capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    return done.returncode, done.stderr.strip()


def test_bad_module_no_handlers_and_no_broker_exit_with_one_line(kafka_bootstrap: str) -> None:
    code, err = _run_cli("run", "no.such.module", "-g", "g", "-t", "t", "-b", kafka_bootstrap)
    assert code == 2 and err.count("\n") == 0 and "cannot import module 'no.such.module'" in err
    code, err = _run_cli("run", "tests.integration.services.empty", "-g", "g", "-t", "t")
    assert code == 2 and err.count("\n") == 0 and "registers no handlers" in err
    code, err = _run_cli(
        "run",
        MODULE,
        "-g",
        "g",
        "-t",
        "t",
        "-b",
        "127.0.0.1:1",
        "--log-format",
        "json",
        "--metrics-port",
        "0",
        timeout=60,
    )
    last = err.splitlines()[-1]
    assert code == 3 and "no Kafka broker at 127.0.0.1:1 within 3s (connection refused)" in last


def test_missing_topics_are_named(kafka_bootstrap: str, make_topic, unique: str) -> None:
    topic = make_topic("needs", partitions=1)
    code, err = _run_cli(
        "run",
        MODULE,
        "-g",
        f"g-{unique}",
        "-t",
        topic,
        "-b",
        kafka_bootstrap,
        "--metrics-port",
        "0",
    )
    assert code == 2
    assert f"{topic}.g-{unique}.dlq" in err and f"{topic}.g-{unique}.retry.1" in err
    assert "streamkit topics ensure" in err
