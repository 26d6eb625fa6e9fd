"""Child-process entry: ``python -m bench.child CONTENDER SPEC.json``.

Runs one contender with the spec the parent wrote and writes its result as JSON to
``spec["out"]``. Exit code 3: the contender's library is not installed here.
"""

from __future__ import annotations

import importlib
import importlib.abc
import json
import os
import sys
from pathlib import Path

from bench.contenders.common import Unavailable

EXIT_UNAVAILABLE = 3


class _Blocked(importlib.abc.MetaPathFinder):
    """Makes a package look not installed (``BENCH_BLOCK_IMPORTS=opentelemetry,...``)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked by the bench)")


def main(argv: list[str]) -> int:
    name, spec_path = argv
    spec = json.loads(Path(spec_path).read_text())
    blocked = [n for n in os.environ.get("BENCH_BLOCK_IMPORTS", "").split(",") if n]
    if blocked:
        sys.meta_path.insert(0, _Blocked(blocked))
    try:
        module = importlib.import_module(f"bench.contenders.{name}")
        result = module.run(spec)
    except Unavailable as exc:
        print(f"unavailable: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    result["vmhwm_mb"] = _high_water_mb()
    Path(spec["out"]).write_text(json.dumps(result))
    return 0


def _high_water_mb() -> float | None:
    """This process's peak RSS since exec (VmHWM), in MB; None where /proc has none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
