"""What the demo tells a new user to type next works as printed."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from examples.orders.demo import next_steps
from tests.integration.cli_helpers import DeadLetterSpec, create_topic, produce_dead_letters
from tests.integration.helpers import ROOT, STREAMKIT

pytestmark = pytest.mark.kafka


def test_the_demos_closing_lines_run_as_printed(
    kafka_bootstrap: str, make_topic: Callable[..., str], admin: Any
) -> None:
    dlq = make_topic("orders.demo.dlq", partitions=1)
    source = make_topic("orders", partitions=1)
    create_topic(admin, f"{source}.demo.retry.1", 1)  # make_topic's cleanup removes it
    specs = [DeadLetterSpec(i, source, "demo") for i in range(3)]
    produce_dead_letters(kafka_bootstrap, dlq, specs)
    lines = next_steps(kafka_bootstrap, dlq)
    commands = [shlex.split(line.split("#")[0]) for line in lines[1:]]
    streamkit = [c for c in commands if c[0] == ".venv/bin/streamkit"]
    assert len(streamkit) == 3
    for command in streamkit:
        done = subprocess.run([STREAMKIT, *command[1:]], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, (command, done.stderr)
    helper = subprocess.run(
        [str(ROOT / "scripts" / "kafka-local"), "--help"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    for command in commands:
        if command[0] == "scripts/kafka-local":
            assert command[1] in helper  # `stop` is a real subcommand
    assert any(line.strip().startswith('eval "$(scripts/kafka-local env)"') for line in lines)
    assert "still running" in lines[0]


def _kafka_local(command: str, home: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"KAFKA_LOCAL_HOME": home} if home else {})}
    return subprocess.run(
        [str(ROOT / "scripts" / "kafka-local"), command],
        capture_output=True, text=True, timeout=30, check=False, env=env,
    )  # fmt: skip


def test_kafka_local_env_prints_an_export_line_for_the_running_broker(tmp_path: Path) -> None:
    # A state directory with no broker: the command says so and exits 3, printing nothing.
    idle = _kafka_local("env", home=str(tmp_path))
    assert (idle.returncode, idle.stdout) == (3, "")
    assert "not running" in idle.stderr
    status = _kafka_local("status")
    if status.returncode != 0:
        pytest.skip("this checkout's kafka-local broker is not running (the suite uses another)")
    bootstrap = status.stdout.split("bootstrap ", 1)[1].split(",", 1)[0]
    assert _kafka_local("env").stdout == f"export STREAMKIT_BOOTSTRAP_SERVERS={bootstrap}\n"
