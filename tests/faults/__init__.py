"""Fault scenarios against the real broker, each checked by the verifier (issue 17)."""
