"""One small module per contender; each exposes ``run(spec) -> dict`` for ``bench.child``."""
