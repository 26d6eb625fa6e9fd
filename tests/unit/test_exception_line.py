"""The failure headers' exception line is what the traceback module would write."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

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


def _raised_from(fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except BaseException as caught:
        return caught
    raise AssertionError("did not raise")


class BrokenNotes(Exception):
    @property
    def __notes__(self) -> list[str]:  # type: ignore[override]
        raise RuntimeError("no notes")


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
    # From Python 3.12 the traceback module adds "Did you mean" hints to these:
    _raised_from(lambda: {}.amount),  # type: ignore[attr-defined]
    _raised_from(lambda: json),  # type: ignore[name-defined]  # noqa: F821
    ImportError("cannot import name 'pathh' from 'os'", name="os", name_from="pathh")
    if sys.version_info >= (3, 12)
    else ImportError("cannot import name 'pathh' from 'os'", name="os"),
]


@pytest.mark.parametrize("exc", CASES, ids=lambda e: type(e).__name__)
def test_exception_line_matches_the_traceback_module(exc: BaseException) -> None:
    assert exception_line(exc) == "".join(traceback.format_exception_only(type(exc), exc))


def test_an_exception_whose_notes_cannot_be_read_is_left_to_the_traceback_module() -> None:
    exc = BrokenNotes("x")
    try:
        expected = "".join(traceback.format_exception_only(BrokenNotes, exc))
    except RuntimeError:  # Python 3.11 lets it escape; ours does the same, through it
        expected = None
    if expected is None:
        with pytest.raises(RuntimeError):
            exception_line(exc)
    else:
        assert exception_line(exc) == expected


def test_a_class_with_a_non_text_module_is_still_named() -> None:
    odd = type("Odd", (Exception,), {})
    odd.__module__ = None  # type: ignore[assignment]
    assert exception_line(odd("x")) == "".join(traceback.format_exception_only(odd, odd("x")))
