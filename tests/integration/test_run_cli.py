"""`streamkit run` flags and start-up messages: port in use, log level, metrics host,
one flag per setting, and what the first log lines say."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson
import psutil
import pytest

from tests.integration.helpers import (
    ROOT,
    STREAMKIT,
    Service,
    ensure_failure_topics,
    wait_until,
)
from tests.integration.services.recorder import router

pytestmark = pytest.mark.kafka
MODULE = "tests.integration.services.recorder"


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    done = subprocess.run(
        [STREAMKIT, "run", MODULE, *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    return done.returncode, done.stderr.strip().splitlines()


@pytest.fixture
def service_topic(kafka_bootstrap: str, make_topic: Callable[..., str], unique: str) -> str:
    topic = make_topic("svc", partitions=1)
    ensure_failure_topics(kafka_bootstrap, router, topic, f"g-{unique}")
    return topic


def test_a_metrics_port_in_use_is_one_line_naming_the_flag(
    kafka_bootstrap: str, service_topic: str, unique: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, lines = _run("-b", kafka_bootstrap, "-g", f"g-{unique}", "-t", service_topic,
                           "--metrics-host", "127.0.0.1", "--metrics-port", str(port),
                           "--log-format", "json")  # fmt: skip
    assert code == 2
    assert not any("Traceback" in line for line in lines)
    assert lines[-1] == (
        f"streamkit: error: metrics port 127.0.0.1:{port} is in use (another streamkit run on "
        "this host?): pass --metrics-port N (or STREAMKIT_METRICS_PORT), 0 to disable"
    )


@pytest.mark.parametrize("how", ["flag", "env"])
def test_an_unknown_log_level_is_one_line_with_the_choices(how: str) -> None:
    args, env = (
        (["--log-level", "verbose"], {})
        if how == "flag"
        else ([], {"STREAMKIT_LOG_LEVEL": "verbose"})
    )
    code, lines = _run("-g", "g", "-t", "t", *args, env=env)
    assert code == 2
    assert lines == [
        "streamkit: error: invalid log level 'verbose' (--log-level / STREAMKIT_LOG_LEVEL): "
        "use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    ]


@pytest.mark.parametrize(
    ("flag", "field"),
    [("--commit-interval", "commit_interval"), ("--stall-after", "stall_after"),
     ("--connect-timeout", "connect_timeout"), ("--shutdown-timeout", "shutdown_timeout")],
)  # fmt: skip
def test_each_setting_flag_reaches_the_settings(flag: str, field: str) -> None:
    code, lines = _run("-g", "g", "-t", "t", flag, "-1")
    assert code == 2
    assert lines[-1].startswith(f"streamkit: error: invalid settings: {field}: ")


def test_every_setting_the_readme_lists_is_a_flag_or_said_to_be_env_only() -> None:
    help_text = subprocess.run([STREAMKIT, "run", "--help"], capture_output=True, text=True,
                               check=True, env={**os.environ, "COLUMNS": "200"}).stdout  # fmt: skip
    readme = (ROOT / "README.md").read_text()
    settings = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    flags, env_only = settings.split("Environment only:", 1)
    names = [w.strip("`,.") for w in flags.split() if w.startswith("`--")]
    assert len(names) >= 15
    for flag in names:
        assert f" {flag.split('=')[0]} " in help_text, flag
    for name in ("MAX_PENDING_PER_PARTITION", "POLL_TIMEOUT", "CHECK_TOPICS", "KAFKA"):
        assert name in env_only


def _bound_addresses(pid: int, port: int) -> set[str]:
    return {
        c.laddr.ip
        for c in psutil.Process(pid).net_connections()
        if c.laddr.port == port and c.status == psutil.CONN_LISTEN
    }


@pytest.mark.parametrize("host", ["127.0.0.1", None])
def test_metrics_host_sets_where_the_probes_listen_and_startup_says_what_runs(
    kafka_bootstrap: str, service_topic: str, unique: str, tmp_path: Path, host: str | None
) -> None:
    extra = ["--metrics-host", host] if host else []
    service = Service(MODULE, bootstrap=kafka_bootstrap, group=f"g-{unique}",
                      topics=[service_topic], out=tmp_path / "out", extra=extra)  # fmt: skip
    service.wait_ready()
    assert _bound_addresses(service.proc.pid, service.port) == {host or "0.0.0.0"}

    def lines() -> list[dict[str, object]]:
        return [orjson.loads(line) for line in service.log.read_text().splitlines()
                if line.startswith("{")]  # fmt: skip

    wait_until(lambda: any(e["event"] == "partitions assigned: ready" for e in lines()), 30, "log")
    assert service.stop() == 0
    events = [e["event"] for e in lines()]
    assert events.index("connecting") < events.index("service")
    assert events.index("service") < events.index("waiting for partition assignment")
    assert events.index("waiting for partition assignment") < events.index(
        "partitions assigned: ready"
    )
    [started] = [e for e in lines() if e["event"] == "service"]
    assert started["event_types"] == sorted(s.event_type for s in router.handlers())
    assert started["topics"] == [service_topic]
    assert f"{service_topic}.g-{unique}.dlq" in started["retry_and_dlq_topics"]  # type: ignore[operator]
    assert started["metrics"] == f"http://{host or '0.0.0.0'}:{service.port}/metrics"
