"""A slow schema registry costs the event loop one wait, not one per record (codecs/registry).

The "registry" is a socket that accepts connections and never answers, so every call
waits for the client's timeout.
"""

from __future__ import annotations

import socket
import time

import pytest
from pydantic import BaseModel

from streamkit.codecs.avro import AvroCodec
from streamkit.codecs.base import NOT_PARSED, Target
from streamkit.codecs.registry import RegistryUnavailableError


class Order(BaseModel):
    order_id: str


def _value(schema_id: int) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + b"\x02a"


@pytest.mark.timeout(30)
def test_unseen_schemas_fail_at_once_after_the_registry_did_not_answer() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the handshakes; nobody ever answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        codec = AvroCodec({"url": url, "timeout": 0.5, "max.retries": 0}, models={"o": Order})
        decode = codec.decoder(Target("model", Order))
        try:
            started = time.monotonic()
            with pytest.raises(RegistryUnavailableError):
                codec.route(_value(1))
            waited = time.monotonic() - started
            assert waited >= 0.4, "the first call waits for the client's timeout"
            for schema_id in range(2, 6):  # routing and decoding other unseen schemas
                with pytest.raises(RegistryUnavailableError, match="not asked again"):
                    codec.route(_value(schema_id))
                with pytest.raises(RegistryUnavailableError, match="not asked again"):
                    decode(_value(schema_id), NOT_PARSED)
            assert time.monotonic() - started < waited + 0.2, "a wait per record"
        finally:
            codec.close()
