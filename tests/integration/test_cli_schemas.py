"""``streamkit schemas register|check`` through the CLI, against the real registry."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

SERVICE = """
from streamkit import Router
from streamkit.codecs.avro import AvroCodec
from dataclasses_avroschema.pydantic import AvroBaseModel

class OrderCreated(AvroBaseModel):
    order_id: str
    amount_cents: int
{extra}
    class Meta:
        namespace = "{namespace}"

router = Router(topics=["{topic}"], codec=AvroCodec("{url}", subject_strategy="topic-record"))

@router.handler("order.created")
def created(event: OrderCreated) -> None:
    pass
"""


def _service(tmp_path: Path, name: str, url: str, namespace: str, topic: str, extra: str) -> None:
    text = SERVICE.format(extra=extra, namespace=namespace, topic=topic, url=url)
    (tmp_path / f"{name}.py").write_text(text)


def _streamkit(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "streamkit"
    return subprocess.run(
        [str(exe), *args], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.timeout(120)
def test_register_then_check_names_the_incompatible_field(
    schema_registry: Any, tmp_path: Path
) -> None:
    namespace, topic = f"com.acme{uuid.uuid4().hex[:6]}", f"orders-{uuid.uuid4().hex[:6]}"
    subject = f"{topic}-{namespace}.OrderCreated"
    _service(tmp_path, "v1", schema_registry.url, namespace, topic, "")
    _service(tmp_path, "v2_ok", schema_registry.url, namespace, topic, '    note: str = ""')
    _service(tmp_path, "v2_bad", schema_registry.url, namespace, topic, "    currency: str")

    new = _streamkit(tmp_path, "schemas", "check", "v1")
    assert new.returncode == 0, new.stderr
    assert "new subject" in new.stdout
    registered = _streamkit(tmp_path, "schemas", "register", "v1")
    assert registered.returncode == 0, registered.stderr
    assert f"{subject}: OrderCreated registered" in registered.stdout
    with SchemaRegistryClient({"url": schema_registry.url}) as client:
        client.set_compatibility(subject, "BACKWARD")

    ok = _streamkit(tmp_path, "schemas", "check", "v2_ok")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{subject}: OrderCreated compatible" in ok.stdout
    bad = _streamkit(tmp_path, "schemas", "check", "v2_bad")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "INCOMPATIBLE" in bad.stdout
    assert "+ field 'currency' added without a default" in bad.stdout
    assert bad.stderr.strip() == "streamkit: error: 1 incompatible schema(s)"


def test_check_with_no_registry_codec_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text(
        "from streamkit import Router\nrouter = Router()\n"
        "@router.handler('x')\ndef x(data: dict) -> None: ...\n"
    )
    done = _streamkit(tmp_path, "schemas", "check", "plain")
    assert done.returncode != 0
    assert done.stderr.strip() == (
        "streamkit: error: no schema-registry codec with models in this module"
    )
