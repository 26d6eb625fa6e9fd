"""Codecs: how record values become events and events become record values."""

from streamkit.codecs.base import NOT_PARSED, Codec, Decoder, Target
from streamkit.codecs.json import BARE_JSON, JSON_ENVELOPE, BareJson, JsonEnvelope

__all__ = [
    "BARE_JSON",
    "JSON_ENVELOPE",
    "NOT_PARSED",
    "BareJson",
    "Codec",
    "Decoder",
    "JsonEnvelope",
    "Target",
]
