import logging

import pytest

from streamkit.clientlog import RepeatFilter


def _record(text: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("streamkit.librdkafka", level, __file__, 1, "%s [%s] %s",
                             ("FAIL", "rdkafka#consumer-1", text), None)  # fmt: skip


def test_repeated_client_lines_pass_once_per_interval_with_a_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr("streamkit.clientlog.time.monotonic", lambda: now[0])
    flt = RepeatFilter(every=30)
    line = "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:{} failed: Connection refused"
    passed = [flt.filter(_record(line.format(9092 + n % 2))) for n in range(588)]
    assert passed.count(True) == 1  # 588 attempts (issue 17: 22 s of outage) -> 1 line
    assert flt.filter(_record("another failure")) is True  # a different line is not held
    now[0] += 31
    again = _record(line.format(9092))
    assert flt.filter(again) is True
    assert "repeated 587 times" in again.getMessage()
