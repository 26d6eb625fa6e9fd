"""Operator tools behind the CLI: dead-letter inspection, replay, purge, produce and lag.

Each module is a small library the CLI wraps (and that a runtime or a script can call):
no printing here except in :mod:`streamkit.ops.render`.
"""
