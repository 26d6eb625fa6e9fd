"""The failure headers' exception line is what the traceback module would write."""

from __future__ import annotations

import traceback

import pytest

from streamkit.retry.failures import exception_line


class ServiceError(Exception):
    """A user's exception: module-qualified in the line."""


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


class Nested:
    class Inner(Exception):
        """Qualified name with its enclosing class."""


def _noted() -> Exception:
    exc = ValueError("with a note")
    exc.add_note("first note\nsecond line")
    return exc


def _syntax() -> SyntaxError:
    try:
        compile("x = (", "<handler>", "exec")
    except SyntaxError as exc:
        return exc
    raise AssertionError("compile did not fail")


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


CASES = [
    ValueError("amount must be positive"),
    ValueError(),
    KeyError("order_id"),
    ServiceError("payment service said 503"),
    ServiceError(""),
    Nested.Inner("deep"),
    Unprintable(),
    ExceptionGroup("two failed", [ValueError("a"), TypeError("b")]),
    _noted(),
    _syntax(),
    _raised(RuntimeError("ünïcode ✓")),
    KeyboardInterrupt(),
]


@pytest.mark.parametrize("exc", CASES, ids=lambda e: type(e).__name__)
def test_exception_line_matches_the_traceback_module(exc: BaseException) -> None:
    assert exception_line(exc) == "".join(traceback.format_exception_only(type(exc), exc))


def test_a_class_with_a_non_text_module_is_still_named() -> None:
    odd = type("Odd", (Exception,), {})
    odd.__module__ = None  # type: ignore[assignment]
    assert exception_line(odd("x")) == "".join(traceback.format_exception_only(odd, odd("x")))
