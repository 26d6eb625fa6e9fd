"""Integration-test fixtures: no service subprocess outlives its test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.helpers import RUNNING


@pytest.fixture(autouse=True)
def _no_orphan_services() -> Iterator[None]:
    yield
    while RUNNING:
        service = RUNNING.pop()
        if service.proc.poll() is None:
            service.proc.kill()
            service.proc.wait(10)
