"""A wrong bootstrap server: every command says so within seconds, not 30 silent ones."""

from __future__ import annotations

import os
import pty
import subprocess
import time

import pytest

from tests.integration.cli_helpers import one_error_line, run_cli
from tests.integration.helpers import STREAMKIT, free_port

FAST = 5.0  # seconds: "fails fast" (librdkafka alone took 30 s)
UNRESOLVABLE = "nosuchhost.invalid:9092"  # .invalid never resolves (RFC 2606)

COMMANDS = [
    ["lag", "-g", "g"],
    ["dlq", "list", "some-dlq"],
    ["dlq", "stats", "some-dlq"],
    ["dlq", "show", "some-dlq", "-p", "0", "-o", "0"],
    ["replay", "some-dlq"],
    ["produce", "some-topic", "-e", "a", "-d", "{}"],
    ["topics", "list"],
    ["topics", "describe", "some-topic"],
    ["topics", "create", "some-topic", "--partitions", "1"],
    ["topics", "ensure", "tests.integration.services.recorder", "-g", "g", "-t", "t"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("where", ["refused", "unknown-host"])
def test_every_command_fails_fast_with_one_line(command: list[str], where: str) -> None:
    server = f"127.0.0.1:{free_port()}" if where == "refused" else UNRESOLVABLE
    reason = "connection refused" if where == "refused" else "host does not resolve"
    started = time.monotonic()
    result = run_cli(*command, "-b", server)
    took = time.monotonic() - started
    assert result.exit_code == 3, result.output
    assert f"no Kafka broker at {server} ({reason})" in one_error_line(result)
    assert took < FAST, f"{took:.1f}s to fail"


def test_a_configured_connect_timeout_keeps_waiting() -> None:
    server = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_cli("lag", "-g", "g", "-b", server, env_vars={"STREAMKIT_CONNECT_TIMEOUT": "2"})
    took = time.monotonic() - started
    assert result.exit_code == 3
    assert f"no Kafka broker at {server} within 2s" in one_error_line(result)
    assert 2 <= took < 2 + FAST


def _stderr_on_a_terminal(*args: str) -> tuple[int, str, float]:
    """Run ``streamkit ARGS`` with stderr on a pseudo-terminal, as a person would."""
    leader, follower = pty.openpty()
    started = time.monotonic()
    with subprocess.Popen([STREAMKIT, *args], stdout=subprocess.DEVNULL, stderr=follower) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = proc.wait(30)
    os.close(leader)
    return code, b"".join(chunks).decode(), time.monotonic() - started


def test_a_terminal_sees_connecting_first() -> None:
    server = f"127.0.0.1:{free_port()}"
    code, err, took = _stderr_on_a_terminal("dlq", "list", "x", "-b", server)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 3 and took < FAST + 5  # a fresh interpreter imports everything first
    assert lines[0] == f"streamkit: connecting to {server} ..."
    assert lines[1].startswith(f"streamkit: error: no Kafka broker at {server}")


@pytest.mark.parametrize("server", ["refused", UNRESOLVABLE])
def test_run_logs_connecting_then_fails_fast(server: str) -> None:
    if server == "refused":
        server = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = subprocess.run(
        [STREAMKIT, "run", "tests.integration.services.recorder", "-g", "g", "-t", "t",
         "-b", server, "--metrics-port", "0", "--log-format", "console"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    took = time.monotonic() - started
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3, done.stderr
    assert "connecting" in lines[0] and server in lines[0]
    assert lines[-1].startswith(f"streamkit: error: no Kafka broker at {server} (")
    assert took < FAST + 5
