"""streamkit benchmarks: ``python -m bench [--smoke] [--scenarios 1,2] [--repeat 3]``.

Each contender runs in its own child process (``python -m bench.child``); the parent
starts the broker, pre-produces data, measures the child (CPU, peak RSS) and writes
``bench/results/``. Modules imported by peer contenders use only the standard library
and pydantic, so they also run in the peers' venv (``.venv-bench``).
"""
