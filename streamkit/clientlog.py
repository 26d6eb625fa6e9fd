"""The one logger librdkafka's own log lines go through (consumer, producer, admin alike)."""

from __future__ import annotations

import logging

RDKAFKA_LOG = logging.getLogger("streamkit.librdkafka")
