"""Fault-suite fixtures: no service outlives its test; verifier summaries end the run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults.verifier import SUMMARIES
from tests.integration.helpers import RUNNING


@pytest.fixture(autouse=True)
def _no_orphan_services() -> Iterator[None]:
    yield
    while RUNNING:
        service = RUNNING.pop()
        if service.proc.poll() is None:
            service.kill()
        else:
            service.wait(10)  # closes its log file


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print each scenario's verifier line after the test results (`make test` shows it)."""
    if SUMMARIES:
        terminalreporter.section("fault verifier summaries")
        for line in SUMMARIES:
            terminalreporter.write_line(line)
