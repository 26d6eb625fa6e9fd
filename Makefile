# streamkit: the two commands in the README are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test jaeger-background lint typecheck contracts unit integration broker-start broker-stop bench bench-smoke soak soak-inbox clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy streamkit

# The architecture's layers (pyproject.toml [tool.importlinter], see ARCHITECTURE.md).
contracts: $(STAMP)
	$(BIN)/lint-imports

# The whole suite against a real broker that this target starts and stops again.
test: jaeger-background $(STAMP) lint typecheck contracts
	@scripts/install-prometheus >/dev/null
	@set -euo pipefail; \
	if scripts/kafka-local status >/dev/null 2>&1; then started=0; else started=1; fi; \
	bootstrap=$$(scripts/kafka-local start | tail -n1); \
	trap '[ $$started = 1 ] && scripts/kafka-local stop >/dev/null' EXIT; \
	STREAMKIT_TEST_BOOTSTRAP=$$bootstrap $(BIN)/pytest -v --durations=10 $(PYTEST_ARGS)

# Jaeger for the tracing e2e tests: built once per machine (~6-10 min), then cached. On a
# fresh machine the build runs in the background on one core while the other tests run;
# the tests on Jaeger run last and wait for it (tests/conftest.py orders them).
jaeger-background:
	@mkdir -p .jaeger-local
	@if [ ! -x "$$(JAEGER_LOCAL_NO_BUILD=1 scripts/jaeger-local build 2>/dev/null)" ]; then \
		echo "building Jaeger in the background (log: .jaeger-local/build.log)" >&2; \
		(JAEGER_LOCAL_BUILD_JOBS=1 nohup scripts/jaeger-local build >.jaeger-local/build.log 2>&1 &); \
	fi

# Not in CI: SOAK_SECONDS (default 600) at SOAK_RATE/s with a SIGKILL every SOAK_KILL_EVERY s.
soak: $(STAMP)
	@set -euo pipefail; \
	if scripts/kafka-local status >/dev/null 2>&1; then started=0; else started=1; fi; \
	bootstrap=$$(scripts/kafka-local start | tail -n1); \
	trap '[ $$started = 1 ] && scripts/kafka-local stop >/dev/null' EXIT; \
	$(BIN)/python -m tests.faults.soak $$bootstrap

# Not in CI: the inbox verifier at full size (20,000 events, 5 SIGKILLs, with and without
# the inbox); make test runs it with 3,000. Starts Kafka, and PostgreSQL via its fixture.
soak-inbox: $(STAMP)
	@set -euo pipefail; \
	if scripts/kafka-local status >/dev/null 2>&1; then started=0; else started=1; fi; \
	bootstrap=$$(scripts/kafka-local start | tail -n1); \
	trap '[ $$started = 1 ] && scripts/kafka-local stop >/dev/null' EXIT; \
	STREAMKIT_INBOX_EVENTS=$${STREAMKIT_INBOX_EVENTS:-20000} STREAMKIT_TEST_BOOTSTRAP=$$bootstrap \
	  $(BIN)/pytest -s -q --timeout 1200 tests/idempotency/test_postgres_inbox.py -k sigkills

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

demo: $(STAMP)
	@bootstrap=$$(scripts/kafka-local start | tail -n1); \
	$(BIN)/python -m examples.orders.demo --bootstrap-servers $$bootstrap

broker-start:
	@scripts/kafka-local start

broker-stop:
	@scripts/kafka-local stop

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-smoke: $(STAMP)
	$(BIN)/python -m bench --smoke $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
