"""The pytest plugin: a ``streamkit_broker`` fixture for sync and async tests, no setup.

Installed with streamkit (entry point ``pytest11``). The fixture runs your handlers on a
:class:`~streamkit.testing.TestBroker` with a virtual clock::

    def test_a_failed_payment_is_retried_after_30_s(streamkit_broker):
        streamkit_broker.publish("payment.authorized", {"payment_id": "p1", "cents": 5})
        assert [c.attempt for c in streamkit_broker.calls("payment.authorized")] == [1]
        streamkit_broker.advance(30)
        assert [c.attempt for c in streamkit_broker.calls("payment.authorized")] == [1, 2]

    async def test_the_same_in_an_async_test(streamkit_broker):
        await streamkit_broker.publish("payment.authorized", {"payment_id": "p1", "cents": 5})

Which handlers: the router named by ``@pytest.mark.streamkit(router="myservice.handlers")``,
else the ``streamkit_router`` ini option, else your ``streamkit_router`` fixture, else the
module-level ``@handler`` functions imported so far. ``async def`` tests that use the
fixture run on its event loop; no async plugin is needed (one that is installed is left
to its own tests).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from streamkit.handlers.registry import Router
from streamkit.testing import Call, Record, TestBroker

T = TypeVar("T")
FIXTURE = "streamkit_broker"


class BrokerHarness:
    """A :class:`TestBroker` on a private event loop.

    Each method runs to completion in a sync test; in an ``async def`` test (run on the
    harness's loop by this plugin) it returns an awaitable instead: ``await`` it.
    """

    def __init__(self, broker: TestBroker) -> None:
        self.broker = broker
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(broker.__aenter__())

    def _run(self, coro: Coroutine[Any, Any, T]) -> Any:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return self.loop.run_until_complete(coro)
        if running is not self.loop:
            coro.close()
            raise RuntimeError("use the streamkit_broker fixture from its own event loop")
        return coro

    def publish(
        self,
        event_type: str,
        data: Any,
        *,
        key: str | bytes | None = None,
        topic: str | None = None,
    ) -> Any:
        """Publish to a source topic and handle everything it causes (now due)."""
        return self._run(self.broker.publish(event_type, data, key=key, topic=topic))

    def send_raw(
        self,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        topic: str | None = None,
    ) -> Any:
        """Send raw bytes to a source topic and handle them."""
        return self._run(self.broker.send_raw(value, key=key, headers=headers, topic=topic))

    def advance(self, seconds: float) -> Any:
        """Move the virtual clock on and handle the retries that became due."""
        return self._run(self.broker.advance(seconds))

    def run_until_idle(self) -> Any:
        """Handle everything that is due."""
        return self._run(self.broker.run_until_idle())

    def fail_publishes(
        self, times: int = 1, *, topic: str | None = None, error: BaseException | None = None
    ) -> None:
        """Make the next ``times`` sends (to ``topic``, or any) fail."""
        self.broker.fail_publishes(times, topic=topic, error=error)

    def calls(self, event_type: str | None = None) -> list[Call]:
        """Every handler call (of ``event_type``) so far."""
        return self.broker.calls(event_type)

    def published(self, event_type: str) -> list[Any]:
        """Payloads of the events of ``event_type`` the handlers published."""
        return self.broker.published(event_type)

    @property
    def dead_letters(self) -> list[Record]:
        """Records in the dead-letter topics."""
        return self.broker.dead_letters

    @property
    def committed(self) -> dict[str, int]:
        """Committed positions per source and retry topic."""
        return self.broker.committed

    def now(self) -> float:
        """The virtual clock, in epoch seconds."""
        return self.broker.now()

    def close(self) -> None:
        """Leave the broker and close the loop."""
        self.loop.run_until_complete(self.broker.__aexit__(None, None, None))
        self.loop.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``streamkit_router`` ini option."""
    parser.addini("streamkit_router", "module (or module:attr) of the handlers under test")


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (works with --strict-markers)."""
    config.addinivalue_line(
        "markers", "streamkit(router=None, group='test'): the handlers streamkit_broker runs"
    )


@pytest.fixture
def streamkit_router() -> Router | str | None:
    """Override in your conftest to choose the router (a Router or a module path)."""
    return None


@pytest.fixture
def streamkit_broker(
    request: pytest.FixtureRequest, streamkit_router: Router | str | None
) -> Iterator[BrokerHarness]:
    """An in-memory broker running your handlers, with a virtual clock."""
    marker = request.node.get_closest_marker("streamkit")
    options = dict(marker.kwargs) if marker is not None else {}
    router = options.pop("router", None) or request.config.getini("streamkit_router") or None
    harness = BrokerHarness(TestBroker(router or streamkit_router, delays="virtual", **options))
    yield harness
    harness.close()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests that use the fixture on the fixture's loop."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj) or FIXTURE not in pyfuncitem.funcargs:
        return None
    harness = pyfuncitem.funcargs[FIXTURE]
    assert isinstance(harness, BrokerHarness)
    names = pyfuncitem._fixtureinfo.argnames
    harness.loop.run_until_complete(pyfuncitem.obj(**{n: pyfuncitem.funcargs[n] for n in names}))
    return True
