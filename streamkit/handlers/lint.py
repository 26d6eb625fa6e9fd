"""Start-up checks of handler code that can be known before the first event.

``ctx.publish("receipt.requested", ...)`` with a literal event type, no ``topic=`` and no
mapping would fail on every event (a ConfigError, dead-lettered at once): the worker
warns about it when it starts instead.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterable, Mapping

from streamkit.handlers.registry import HandlerSpec


def unmapped_publishes(
    specs: Iterable[HandlerSpec], topics: Mapping[str, str], default_topic: str | None
) -> list[tuple[str, str]]:
    """(handler, event type) for each literal ``ctx.publish`` that has no topic to go to."""
    if default_topic:
        return []
    found = []
    for spec in specs:
        if not spec.wants_ctx:
            continue
        for event_type in _published_types(spec):
            if event_type not in topics:
                found.append((spec.name, event_type))
    return found


def _published_types(spec: HandlerSpec) -> list[str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(spec.fn)))
    except (OSError, TypeError, SyntaxError):
        return []  # no source (a builtin, a REPL): nothing can be known
    return [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "publish"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
        and not any(k.arg == "topic" for k in node.keywords)
    ]
