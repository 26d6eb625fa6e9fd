"""Broker faults, on a private broker (own KAFKA_LOCAL_HOME): the session broker is untouched.

One broker serves the module; each test leaves it running (or the next test restarts it).
`scripts/kafka-local restart` brings it back on the same port with its data kept.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.faults.harness import (
    MODULE,
    PrivateBroker,
    journal_service,
    log_events,
    produce_seq,
    timed_stop,
    wait_seen,
)
from tests.faults.verifier import Crash, read_journal, verify
from tests.integration.helpers import STREAMKIT, Service, committed, wait_until

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    """A broker of this module's own; stopped (and its data removed) at the end."""
    private = PrivateBroker(tmp_path_factory.mktemp("private-broker"))
    private.bootstrap = private.run("start")
    yield private
    private.run("stop")


def _topic(bootstrap: str, name: str, partitions: int) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


@pytest.mark.timeout(120)
def test_broker_down_at_start_fails_clearly_or_waits_then_consumes_everything(
    broker: PrivateBroker, unique: str, tmp_path: Path
) -> None:
    # Contract: with no broker, `streamkit run` exits 3 with one line after its connect
    # timeout; started while the broker is down but coming back within that timeout, it
    # waits, then consumes every record exactly once.
    topic, group, out = _topic(broker.bootstrap, f"down-{unique}", 2), f"g-{unique}", tmp_path / "j"
    produced = produce_seq(broker.bootstrap, topic, keys=10, per_key=50)
    broker.run("stop")
    done = subprocess.run(
        [STREAMKIT, "run", MODULE, "-b", broker.bootstrap, "-g", group, "-t", topic,
         "--metrics-port", "0"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "STREAMKIT_CONNECT_TIMEOUT": "2", "STREAMKIT_CHECK_TOPICS": "false"},
    )  # fmt: skip
    assert done.returncode == 3, done.stderr[-1500:]
    assert f"no Kafka broker at {broker.bootstrap}" in done.stderr.splitlines()[-1]
    service = journal_service(broker.bootstrap, group, topic, out,
                              env={"STREAMKIT_CONNECT_TIMEOUT": "60"})  # fmt: skip
    time.sleep(1)  # the fault itself: the service is up before the broker is
    assert service.proc.poll() is None
    broker.run("restart")
    service.wait_ready(60)
    wait_seen(out, produced, 60)
    assert service.stop() == 0
    verify("broker down at start", produced, read_journal(out)).check()


@pytest.mark.timeout(150)
def test_broker_restart_with_data_kept_loses_nothing(
    broker: PrivateBroker, unique: str, tmp_path: Path
) -> None:
    # Contract: a broker restart (data and port kept) while a service consumes loses no
    # record; records repeated are only those at or after the commits before the restart.
    topic, group, out = (
        _topic(broker.bootstrap, f"bounce-{unique}", 3),
        f"g-{unique}",
        tmp_path / "j",
    )
    produced = produce_seq(broker.bootstrap, topic, keys=30, per_key=100, event_type="j.async",
                           extra={"sleep": 0.02})  # fmt: skip
    small = {"STREAMKIT_MAX_BUFFERED": "200", "STREAMKIT_BATCH_SIZE": "100"}
    service = journal_service(broker.bootstrap, group, topic, out, env=small)
    service.wait_ready(30)
    wait_until(lambda: len(read_journal(out)) >= 500, 60, "progress before the restart")
    before = committed(broker.bootstrap, group, topic, 3)
    broker.run("restart")
    restart = Crash(before, len(read_journal(out)) + 10**9)  # a window over the whole run
    wait_seen(out, produced, 90)
    assert service.stop(30) == 0, service.log.read_text()[-2000:]
    verify("broker restart, data kept", produced, read_journal(out), crashes=[restart]).check()


def _outage_service(broker: PrivateBroker, name: str, tmp_path: Path, sleep: float = 0) -> Service:
    """A service that has handled 4 records; with ``sleep``, 16 more are still running."""
    topic, group = _topic(broker.bootstrap, name, 2), f"g-{name}"
    service = journal_service(broker.bootstrap, group, topic, tmp_path / "j",
                              extra=["--shutdown-timeout", "5"])  # fmt: skip
    service.wait_ready(30)
    produce_seq(broker.bootstrap, topic, keys=4, per_key=5, event_type="j.async",
                extra={"sleep": sleep})  # fmt: skip
    wait_until(lambda: len(read_journal(tmp_path / "j")) >= 4, 30, "records handled")
    return service


@pytest.mark.timeout(90)
def test_client_log_lines_are_rate_limited_during_a_broker_outage(
    broker: PrivateBroker, unique: str, tmp_path: Path
) -> None:
    # Contract: during a 5 s broker outage the service writes at most 10 error lines
    # (repeated client errors are rate-limited), not hundreds.
    service = _outage_service(broker, f"flood-{unique}", tmp_path)
    seen = len(log_events(service))
    broker.run("stop")
    try:
        time.sleep(5)  # the measured window itself, not a synchronisation
        errors = [e for e in log_events(service)[seen:] if e.get("level") in ("error", "critical")]
    finally:
        broker.run("restart")
    code = service.stop(30)
    print(f"error log lines in a 5 s outage: {len(errors)}")
    assert len(errors) <= 10, [e.get("event") for e in errors[:5]]
    if code != 0:  # the rate limit held; the exit is a separate, open defect
        pytest.xfail(f"known, open: exit {code} after the outage (seen in fresh-clone runs)")


@pytest.mark.timeout(90)
def test_sigterm_while_the_broker_is_down_exits_within_the_shutdown_timeout(
    broker: PrivateBroker, unique: str, tmp_path: Path
) -> None:
    # Contract: with --shutdown-timeout 5 and the broker gone while handlers still run (so
    # there is something left to commit), SIGTERM ends the process within 5 s plus 3 s of
    # slack: every step of shutdown is bounded.
    service = _outage_service(broker, f"termdown-{unique}", tmp_path, sleep=1.0)
    broker.run("stop")
    try:
        code, took = timed_stop(service, signal.SIGTERM, 8)
    finally:
        broker.run("restart")
    print(f"SIGTERM with the broker down: exit {code} after {took:.1f}s")
    assert code is not None and took <= 8, f"still running after {took:.1f}s"
