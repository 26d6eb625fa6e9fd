"""A real Prometheus server for integration tests: temp config, temp TSDB, 127.0.0.1 only.

The binary comes from the Debian package ``prometheus`` (``scripts/install-prometheus``,
which ``make test`` runs). Without it the tests that need it fail under CI and skip locally.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import yaml

from tests.integration.helpers import free_port, wait_until

IN_CI = os.environ.get("CI", "").lower() == "true"


def prometheus_binary() -> str:
    """Path of the ``prometheus`` binary; fails (CI) or skips (locally) when missing."""
    found = shutil.which("prometheus")
    if found is None:
        message = "prometheus not on PATH: run scripts/install-prometheus"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


class PrometheusServer:
    """``prometheus`` scraping ``targets`` every second and evaluating ``rule_files``.

    Use as a context manager; :meth:`query` runs an instant query through the HTTP API.
    """

    def __init__(
        self,
        workdir: Path,
        targets: list[str],
        rule_files: list[Path],
        interval: str = "1s",
        features: tuple[str, ...] = (),  # --enable-feature values, e.g. exemplar-storage
    ) -> None:
        binary = prometheus_binary()
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": interval,
            },
            "rule_files": [str(path.resolve()) for path in rule_files],
            "scrape_configs": [
                {"job_name": "streamkit", "static_configs": [{"targets": targets}]},
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log = workdir / "prometheus.log"
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
                *(f"--enable-feature={feature}" for feature in features),
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait for ``/-/ready``; fail with the log if the process exits first."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{self.log.read_text()[-3000:]}")
            return self._get("/-/ready")[0] == 200

        wait_until(ready, timeout, "prometheus to be ready", every=0.1)

    def _get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:  # 400/422 carry a JSON error body
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """GET ``/api/v1/<path>``; the decoded JSON answer (``status`` is error on failure)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = self._get(f"/api/v1/{path}{query}")
        if not body:
            return {"status": "error", "error": f"HTTP {status}, no body"}
        answer: dict[str, Any] = json.loads(body)
        return answer

    def query(self, expr: str) -> dict[str, Any]:
        """Instant query: ``{"status": ..., "data": {"resultType", "result"}}``."""
        return self.api("query", query=expr)

    def vector(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """``(labels, value)`` of each series of an instant query (asserting success)."""
        answer = self.query(expr)
        assert answer["status"] == "success", (expr, answer)
        return [(s["metric"], float(s["value"][1])) for s in answer["data"]["result"]]

    def close(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log_file.close()

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
