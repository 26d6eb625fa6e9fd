"""A quick TCP look at the bootstrap servers before librdkafka is asked for metadata.

librdkafka retries a refused connection or an unknown host until its request times out
(30 s by default), so a typo in ``--bootstrap-servers`` used to mean 30 silent seconds.
One TCP connect per address tells "nothing listens there" apart from "a broker that is
slow to answer" in milliseconds: when every bootstrap server refuses or does not resolve,
commands fail at once, unless a wait was configured (``STREAMKIT_CONNECT_TIMEOUT``), for a
broker that may still be starting.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from streamkit.config import Settings
from streamkit.errors import BrokerUnavailableError

PROBE_TIMEOUT = 2.0  # seconds per TCP connect: a broker on the network answers in far less
RETRY_EVERY = 0.5  # seconds between rounds while waiting for a broker to come up
DEFAULT_PORT = 9092


@dataclass(frozen=True, slots=True)
class Probe:
    """What one bootstrap server did: ``ok`` (accepted or no answer yet) or why not."""

    server: str
    ok: bool
    reason: str = ""


def split_servers(bootstrap: str) -> list[tuple[str, str, int]]:
    """``"a:1,PLAINTEXT://b:2,[::1]:3"`` -> ``[(text, host, port), ...]``."""
    out = []
    for item in (s.strip() for s in bootstrap.split(",")):
        if not item:
            continue
        address = item.split("://", 1)[-1]
        host, sep, port_text = address.rpartition(":")
        if not sep or host.endswith(":"):  # no port, or a bare IPv6 address
            host, port_text = address, str(DEFAULT_PORT)
        try:
            port = int(port_text)
        except ValueError:
            port, host = DEFAULT_PORT, address
        out.append((item, host.strip("[]"), port))
    return out


def probe(server: str, host: str, port: int, timeout: float = PROBE_TIMEOUT) -> Probe:
    """Resolve ``host`` and try a TCP connect to each of its addresses."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return Probe(server, False, "host does not resolve")
    except UnicodeError:
        return Probe(server, False, "invalid host name")
    reason = "connection refused"
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(address)
            except TimeoutError:
                # No answer is not a refusal (a firewall, a far network): let the client wait.
                return Probe(server, True)
            except ConnectionRefusedError:
                continue
            except OSError as exc:  # unreachable network, no route to host
                reason = (exc.strerror or type(exc).__name__).lower()
                continue
            return Probe(server, True)
    return Probe(server, False, reason)


def broker_wait(settings: Settings) -> float:
    """Seconds to keep probing a refusing broker: ``connect_timeout`` when the operator set
    it (flag or ``STREAMKIT_CONNECT_TIMEOUT``), else none: fail at once."""
    return settings.connect_timeout if "connect_timeout" in settings.model_fields_set else 0.0


def check_reachable(
    bootstrap: str,
    wait: float = 0.0,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Raise :class:`BrokerUnavailableError` when no bootstrap server accepts a connection.

    One round of probes; with ``wait`` > 0 rounds repeat until one server accepts or
    ``wait`` seconds passed.
    """
    servers = split_servers(bootstrap)
    if not servers:
        return  # nothing to probe; the client reports an empty bootstrap itself
    deadline = clock() + wait
    while True:
        results = []
        for server in servers:  # in order, and no further than the first that answers
            results.append(probe(*server))
            if results[-1].ok:
                return
        if clock() >= deadline:
            break
        sleep(RETRY_EVERY)
    within = f" within {wait:g}s" if wait > 0 else ""
    detail = (
        results[0].reason
        if len(results) == 1
        else "; ".join(f"{r.server}: {r.reason}" for r in results)
    )
    hint = "check --bootstrap-servers / STREAMKIT_BOOTSTRAP_SERVERS"
    if wait <= 0:
        hint += "; set STREAMKIT_CONNECT_TIMEOUT=SECONDS to wait for a broker that is starting"
    raise BrokerUnavailableError(f"no Kafka broker at {bootstrap}{within} ({detail}); {hint}")
