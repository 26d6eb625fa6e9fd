"""Find the :class:`Router` of a service module given as ``package.module[:attribute]``."""

from __future__ import annotations

import importlib
import sys

from streamkit.errors import ConfigError
from streamkit.handlers.registry import Router, default_router


def load_router(spec: str) -> Router:
    """Import ``spec`` and return its router.

    ``module:attr`` names the router; otherwise the module's single ``Router`` attribute,
    else the default router that bare ``@handler`` decorators fill.
    """
    module_name, _, attr = spec.partition(":")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: the working directory is importable
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(f"cannot import module {module_name!r}: {exc}") from None
        raise
    if attr:
        found = getattr(module, attr, None)
        if not isinstance(found, Router):
            raise ConfigError(f"{module_name!r} has no Router named {attr!r}")
        router = found
    else:
        router = _find_router(module_name, vars(module))
    if len(router) == 0:
        raise ConfigError(f"module {module_name!r} registers no handlers")
    return router


def _find_router(module_name: str, namespace: dict[str, object]) -> Router:
    routers = {id(v): v for v in namespace.values() if isinstance(v, Router)}
    routers.pop(id(default_router), None)
    if len(routers) > 1:
        raise ConfigError(
            f"module {module_name!r} has several routers; name one as {module_name}:ATTRIBUTE"
        )
    if routers:
        return next(iter(routers.values()))
    return default_router
