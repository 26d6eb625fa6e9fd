"""Child processes: one contender each, measured from outside with ``wait4``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.child import EXIT_UNAVAILABLE

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    """What one child run produced."""

    contender: str
    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    cpu_total_s: float = 0.0  # user + system of the whole child, start-up included
    peak_rss_mb: float = 0.0
    rss_samples_mb: list[float] = field(default_factory=list)
    note: str = ""


class Child:
    """``python -m bench.child CONTENDER SPEC`` with stderr to a log file."""

    def __init__(
        self, python: str, contender: str, spec: dict[str, Any], workdir: Path, tag: str
    ) -> None:
        self.contender = contender
        self.spec = spec
        self.log_path = workdir / f"{tag}.log"
        spec_path = workdir / f"{tag}.spec.json"
        spec.setdefault("out", str(workdir / f"{tag}.out.json"))
        spec.setdefault("tmpdir", str(workdir))
        spec_path.write_text(json.dumps(spec))
        self.argv = [python, "-m", "bench.child", contender, str(spec_path)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.rss_samples: list[float] = []

    def start(self, wrap: list[str] | None = None) -> Child:
        # spec["env"]: variables for this contender only (e.g. the tracing runs').
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.spec.get("env", {})}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [*(wrap or []), *self.argv],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def sample_rss(self) -> float:
        """Current RSS in MB (0 when gone); kept for the report."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    mb = int(line.split()[1]) / 1024
                    self.rss_samples.append(mb)
                    return mb
        except (OSError, ValueError):
            pass
        return 0.0

    def exited(self) -> bool:
        """True once the child has exited (without reaping it: ``wait`` still can)."""
        info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return info is not None

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the child (reap it with ``wait``)."""
        self._kill()

    def wait(self, timeout: float, sample_every: float = 0.0) -> Outcome:
        """Reap the child (killing it after ``timeout``) and read its result."""
        deadline = time.monotonic() + timeout
        next_sample = 0.0
        while True:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if now > deadline:
                self._kill()
                pid, status, usage = os.wait4(self.pid, 0)
                return self._outcome(-9, usage, f"timed out after {timeout:.0f} s")
            if sample_every and now >= next_sample:
                self.sample_rss()
                next_sample = now + sample_every
            time.sleep(0.02)
        assert self.proc is not None
        self.proc.returncode = code = os.waitstatus_to_exitcode(status)
        return self._outcome(code, usage, "")

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def _outcome(self, code: int, usage: Any, note: str) -> Outcome:
        out = Outcome(
            self.contender,
            ok=False,
            cpu_total_s=usage.ru_utime + usage.ru_stime,
            peak_rss_mb=usage.ru_maxrss / 1024,
            rss_samples_mb=self.rss_samples,
        )
        if code == EXIT_UNAVAILABLE:
            out.note = "not installed: " + self.log_tail(1)
        elif code != 0 or note:
            out.note = note or f"exit {code}: {self.log_tail(3)}"
        else:
            out.ok = True
            result = Path(self.spec["out"])
            out.result = json.loads(result.read_text()) if result.exists() else {}
            # wait4's ru_maxrss keeps the parent's RSS at fork time across the exec (a bench
            # parent that produced big payloads made every later child look that big); the
            # child's own high-water mark is its real peak.
            out.peak_rss_mb = out.result.get("vmhwm_mb") or out.peak_rss_mb
        return out

    def log_tail(self, lines: int) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])[:500]


def wait_for_file(path: str, timeout: float, children: list[Child]) -> bool:
    """Wait until ``path`` exists; False on timeout or when a child died meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        if any(c.exited() for c in children):
            return False
        time.sleep(0.02)
    return False


def read_int(path: str) -> int:
    try:
        return int(Path(path).read_text() or 0)
    except (OSError, ValueError):
        return 0
