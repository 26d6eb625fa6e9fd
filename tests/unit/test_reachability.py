"""The bootstrap probe: parsing server lists and telling refused from slow."""

from __future__ import annotations

import socket

import pytest

from streamkit.config import Settings
from streamkit.errors import BrokerUnavailableError
from streamkit.reachability import broker_wait, check_reachable, probe, split_servers


def test_split_servers_handles_protocols_ipv6_and_missing_ports() -> None:
    assert split_servers("a:1, SASL_SSL://b:2,[::1]:3,c,,") == [
        ("a:1", "a", 1),
        ("SASL_SSL://b:2", "b", 2),
        ("[::1]:3", "::1", 3),
        ("c", "c", 9092),
    ]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_listening_port_is_ok_and_a_closed_one_refused() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert probe(f"127.0.0.1:{port}", "127.0.0.1", port).ok
    closed = _closed_port()
    assert probe("x", "127.0.0.1", closed).reason == "connection refused"
    assert probe("x", "nosuchhost.invalid", 9092).reason == "host does not resolve"


def test_one_reachable_server_of_several_is_enough() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        check_reachable(f"127.0.0.1:{_closed_port()},127.0.0.1:{port}")


def test_every_reason_is_named_and_a_wait_retries_until_its_bound() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    servers = f"127.0.0.1:{_closed_port()},nosuchhost.invalid:1"
    with pytest.raises(BrokerUnavailableError) as caught:
        check_reachable(servers, wait=2.0, clock=lambda: now[0], sleep=sleep)
    message = str(caught.value)
    assert message.startswith(f"no Kafka broker at {servers} within 2s (")
    assert ": connection refused; nosuchhost.invalid:1: host does not resolve)" in message
    assert sum(slept) >= 2.0 and len(slept) == 4
    with pytest.raises(BrokerUnavailableError, match="STREAMKIT_CONNECT_TIMEOUT=SECONDS"):
        check_reachable(servers, clock=lambda: now[0], sleep=sleep)


def test_only_a_configured_connect_timeout_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMKIT_CONNECT_TIMEOUT", raising=False)
    assert broker_wait(Settings()) == 0.0
    assert broker_wait(Settings(connect_timeout=7)) == 7.0
    monkeypatch.setenv("STREAMKIT_CONNECT_TIMEOUT", "5")
    assert broker_wait(Settings()) == 5.0
