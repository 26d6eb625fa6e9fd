"""The bench's surroundings: the broker, the peers' venv, the machine and versions."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KAFKA_LOCAL = REPO / "scripts" / "kafka-local"
PEER_VENV = REPO / ".venv-bench"
PEER_REQUIREMENTS = REPO / "bench" / "requirements-peers.txt"


@dataclass
class Broker:
    """Where the broker is, and whether this run started it (and so stops it)."""

    bootstrap: str
    started: bool


def ensure_broker() -> Broker:
    """``STREAMKIT_BENCH_BOOTSTRAP``, else a running or newly started ``kafka-local``."""
    given = os.environ.get("STREAMKIT_BENCH_BOOTSTRAP")
    if given:
        return Broker(given, started=False)
    running = subprocess.run([sys.executable, KAFKA_LOCAL, "status"], capture_output=True)
    out = subprocess.run(
        [sys.executable, KAFKA_LOCAL, "start"], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"bench: could not start the local broker:\n{out.stderr}")
    return Broker(out.stdout.strip().splitlines()[-1], started=running.returncode != 0)


def stop_broker() -> None:
    subprocess.run([sys.executable, KAFKA_LOCAL, "stop"], capture_output=True, check=False)


@dataclass
class Peers:
    """The peers' interpreter (None when the venv could not be made) and install notes."""

    python: str | None
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


def _requirements() -> list[str]:
    lines = PEER_REQUIREMENTS.read_text().splitlines()
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


def ensure_peers(log: Path) -> Peers:
    """Create ``.venv-bench`` and install each peer separately; a failure skips that peer."""
    python = PEER_VENV / "bin" / "python"
    stamp = PEER_VENV / ".bench-installed"
    digest = hashlib.sha256(PEER_REQUIREMENTS.read_bytes()).hexdigest()
    notes: list[str] = []
    if not (stamp.is_file() and stamp.read_text() == digest):
        if not python.exists():
            made = subprocess.run([sys.executable, "-m", "venv", PEER_VENV], capture_output=True)
            if made.returncode != 0:
                return Peers(None, [f"could not create {PEER_VENV.name}: {made.stderr!r}"])
            (PEER_VENV / ".gitignore").write_text("*\n")  # keep the venv out of git
        notes = _install(python, log)
        if not notes:
            stamp.write_text(digest)
    return Peers(str(python), notes, peer_versions(str(python)))


def _install(python: Path, log: Path) -> list[str]:
    notes = []
    with open(log, "ab") as out:
        for requirement in _requirements():
            print(f"bench: pip install {requirement} into {PEER_VENV.name}", file=sys.stderr)
            rc = subprocess.run(
                [python, "-m", "pip", "install", "--quiet", requirement],
                stdout=out,
                stderr=subprocess.STDOUT,
            ).returncode
            if rc != 0:
                notes.append(f"pip install {requirement!r} failed (see {log.name}); skipped")
    return notes


VERSION_PROBE = """
import json, importlib.metadata as md
names = ["faststream", "aiokafka", "quixstreams", "confluent-kafka", "pydantic", "py-spy"]
out = {}
for n in names:
    try:
        out[n] = md.version(n)
    except md.PackageNotFoundError:
        pass
try:
    import confluent_kafka
    out["librdkafka"] = confluent_kafka.libversion()[0]
except Exception:
    pass
print(json.dumps(out))
"""


def peer_versions(python: str) -> dict[str, str]:
    out = subprocess.run([python, "-c", VERSION_PROBE], capture_output=True, text=True)
    try:
        return dict(json.loads(out.stdout))
    except ValueError:
        return {}


def machine() -> dict[str, object]:
    """Cores, CPU model, memory, kernel."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or "?"
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": _memory_gb(),
        "kernel": platform.release(),
        "load_avg_at_start": list(os.getloadavg()),
    }


def _memory_gb() -> float:
    try:
        line = Path("/proc/meminfo").read_text().splitlines()[0]
        return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        return 0.0


def versions() -> dict[str, str]:
    """Versions of what the raw loop and streamkit run on (this interpreter)."""
    import confluent_kafka
    import orjson
    import pydantic

    import streamkit

    return {
        "python": platform.python_version(),
        "confluent-kafka": _dist_version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "pydantic": pydantic.VERSION,
        "orjson": orjson.__version__,
        "streamkit": streamkit.__version__,
        "kafka broker": _kafka_version(),
    }


def _kafka_version() -> str:
    import re

    pom = (REPO / "scripts" / "kafka-local-pom.xml").read_text()
    found = re.search(r"<kafka\.version>([^<]+)<", pom)
    return found.group(1) if found else "?"


def _dist_version(name: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(name)
