"""Produce records byte for byte with a hand-built Kafka Produce request (v3, record batch v2).

confluent-kafka turns a bytes header *name* into its ``str()`` text (``"b'\\xff'"``), so it
cannot write a header name that is not valid UTF-8; the wire format allows any bytes. This
writes what a non-Python producer could. Single-broker test clusters only: it sends to the
bootstrap, which must lead the partition.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence

RawHeaders = Sequence[tuple[bytes, bytes | None]]
RawRecord = tuple[bytes | None, bytes | None, RawHeaders]  # key, value, headers

_CRC32C = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C.append(_c)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as record batches v2 carry."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _varint(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)  # zigzag
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _bytes(b: bytes | None) -> bytes:
    return _varint(-1) if b is None else _varint(len(b)) + b


def _record(i: int, key: bytes | None, value: bytes | None, headers: RawHeaders) -> bytes:
    body = b"\x00" + _varint(0) + _varint(i) + _bytes(key) + _bytes(value)
    body += _varint(len(headers)) + b"".join(_bytes(k) + _bytes(v) for k, v in headers)
    return _varint(len(body)) + body


def record_batch(records: Sequence[RawRecord]) -> bytes:
    """One uncompressed, non-idempotent record batch (magic 2)."""
    now = int(time.time() * 1000)
    tail = struct.pack(">hiqqqhii", 0, len(records) - 1, now, now, -1, -1, -1, len(records))
    tail += b"".join(_record(i, k, v, h) for i, (k, v, h) in enumerate(records))
    after_length = struct.pack(">ibI", -1, 2, crc32c(tail)) + tail  # leader epoch, magic, crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


def produce(bootstrap: str, topic: str, partition: int, records: Sequence[RawRecord]) -> None:
    """Write ``records`` to ``topic``/``partition`` with acks=-1; raise on any error code."""
    host, port = bootstrap.rsplit(",", 1)[-1].rsplit(":", 1)
    batch = record_batch(records)
    name = topic.encode()
    payload = struct.pack(">hhii", -1, -1, 30_000, 1)  # no txn id, acks=all, timeout, 1 topic
    payload += struct.pack(">h", len(name)) + name + struct.pack(">ii", 1, partition)
    payload += struct.pack(">i", len(batch)) + batch
    client = b"faults-raw"
    header = struct.pack(">hhih", 0, 3, 1, len(client)) + client  # Produce v3
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(struct.pack(">i", len(header) + len(payload)) + header + payload)
        size = struct.unpack(">i", _recv(sock, 4))[0]
        resp = _recv(sock, size)
    # correlation id, 1 topic, its name, 1 partition, then partition index and error code
    off = 4 + 4 + 2 + len(name) + 4
    index, error = struct.unpack_from(">ih", resp, off)
    if error:
        raise RuntimeError(f"produce to {topic}/{index} failed with Kafka error code {error}")


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf
