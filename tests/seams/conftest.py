"""The seam tests run on the behavioural suite's two backends."""

from tests.behaviour.conftest import run_on

__all__ = ["run_on"]
