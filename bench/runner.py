"""``python -m bench``: broker, peers, scenarios one after another, then the report."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import environment, report
from bench.context import Bench
from bench.environment import Peers
from bench.kafka import Admin
from bench.model import ScenarioResult
from bench.scenarios import ALL, SCENARIOS, SMOKE_DEFAULT, SMOKE_SKIPS
from bench.sizes import DEFAULT, SMOKE, with_overrides

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, 1 repeat (< 60 s)")
    ap.add_argument(
        "--scenarios",
        nargs="+",
        default=None,
        help=f"which to run, e.g. 1 2 7 or 1,4 (default: all of {','.join(ALL)}; "
        f"--smoke: all but {','.join(SMOKE_SKIPS)})",
    )
    ap.add_argument("--repeat", type=int, default=None, help="runs per contender (median)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a size from bench/sizes.py, e.g. --set s1_events=100000",
    )
    ap.add_argument("--no-peers", action="store_true", help="skip FastStream and Quix Streams")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    ap.add_argument("--name", default=None, help="results file stem (default latest/smoke)")
    return ap.parse_args(argv)


def selected(args: argparse.Namespace) -> list[str]:
    if not args.scenarios:
        return list(SMOKE_DEFAULT if args.smoke else ALL)
    names = [n.strip() for part in args.scenarios for n in part.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"bench: unknown scenario(s) {unknown}; choose from {ALL}")
    return names


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    names = selected(args)
    sizes = with_overrides(SMOKE if args.smoke else DEFAULT, args.set)
    repeat = args.repeat or (1 if args.smoke else 3)
    started = time.monotonic()
    broker = environment.ensure_broker()
    print(f"bench: broker {broker.bootstrap} ({'started' if broker.started else 'reused'})")
    try:
        with tempfile.TemporaryDirectory(prefix="streamkit-bench-") as tmp:
            workdir = Path(tmp)
            peers = _peers(args, workdir)
            stem = args.name or _stem(args.smoke, names)
            bench = Bench(
                broker.bootstrap,
                Admin(broker.bootstrap),
                sizes,
                repeat,
                peers,
                workdir,
                args.out,
                "" if stem == "latest" else f"{stem}-",
                smoke=args.smoke,
            )
            results = run_all(bench, names)
            meta = _meta(args, bench, repeat, started)
            path = report.write(args.out, stem, meta, results)
            bench.admin.delete_topics(list(bench.topics.values()))
    finally:
        if broker.started:
            environment.stop_broker()
    print(path.read_text())
    print(
        f"bench: wrote {path} and {path.with_suffix('.json')} in {time.monotonic() - started:.0f} s"
    )
    return 0


def _stem(smoke: bool, names: list[str]) -> str:
    """smoke, latest (all scenarios), or partial: a subset never overwrites latest.*"""
    if smoke:
        return "smoke"
    return "latest" if set(names) == set(ALL) else "partial"


def _peers(args: argparse.Namespace, workdir: Path) -> Peers:
    if args.no_peers:
        return Peers(None, ["peers skipped (--no-peers)"])
    log = args.out / "peers-install.log.tmp"
    args.out.mkdir(parents=True, exist_ok=True)
    return environment.ensure_peers(log)


def run_all(bench: Bench, names: list[str]) -> list[ScenarioResult]:
    results = []
    for name in names:
        print(f"bench: scenario {name} ...", flush=True)
        t0 = time.monotonic()
        results.append(_guarded(name, SCENARIOS[name], bench))
        print(f"bench: scenario {name} done in {time.monotonic() - t0:.0f} s", flush=True)
    return results


def _guarded(name: str, fn: Callable[[Bench], ScenarioResult], bench: Bench) -> ScenarioResult:
    """A scenario that raises becomes a row saying so; the others still run."""
    try:
        return fn(bench)
    except Exception as exc:
        traceback.print_exc()
        result = ScenarioResult(f"s{name}", f"scenario {name}", [])
        result.notes = [f"failed: {type(exc).__name__}: {exc}"]
        return result


def _meta(args: argparse.Namespace, bench: Bench, repeat: int, started: float) -> dict[str, Any]:
    argv = ["python", "-m", "bench", *sys.argv[1:]]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(argv),
        "mode": "smoke" if args.smoke else "default",
        "repeat": repeat,
        "sizes": vars(bench.sizes),
        "machine": environment.machine(),
        "versions": environment.versions(),
        "peer_versions": bench.peers.versions,
        "notes": bench.peers.notes + _smoke_note(args.smoke) + _load_note(),
        "duration_s": round(time.monotonic() - started),
    }


def _smoke_note(smoke: bool) -> list[str]:
    if not smoke:
        return []
    return [
        "Smoke mode: sizes far too small for the figures to mean anything (start-up and "
        "cache effects dominate); it checks that the scenarios still run. Scenarios "
        f"{', '.join(SMOKE_SKIPS)} (a group of processes, a schema registry, PostgreSQL) "
        "run only when named: `--smoke --scenarios 7 10 11`."
    ]


def _load_note() -> list[str]:
    with contextlib.suppress(OSError):
        load = Path("/proc/loadavg").read_text().split()[:3]
        return [
            f"Load average at the end: {' '.join(load)} (other work on the machine adds noise)."
        ]
    return []
