# elicence — two commands: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= ./var
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint typecheck bench bench-quick clean fuzz mutate

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	ELICENCE_PUBLIC_BASE_URL=$${ELICENCE_PUBLIC_BASE_URL:-http://$(HOST):$(PORT)} \
	  $(BIN)/elicence init --demo --data-dir $(DATA_DIR)
	ELICENCE_PUBLIC_BASE_URL=$${ELICENCE_PUBLIC_BASE_URL:-http://$(HOST):$(PORT)} \
	  $(BIN)/python -m api.ops.demo_urls --data-dir $(DATA_DIR)
	# Demo mode: holders sign in at the development identity provider mounted at /dev-idp. The
	# event delivery worker runs beside the server and is stopped with it; the demo lets
	# subscriptions post to http://127.0.0.1:<port> (never in production).
	export ELICENCE_PUBLIC_BASE_URL=$${ELICENCE_PUBLIC_BASE_URL:-http://$(HOST):$(PORT)} \
	  ELICENCE_EVENTS_ALLOW_HTTP_LOOPBACK=$${ELICENCE_EVENTS_ALLOW_HTTP_LOOPBACK:-1}; \
	  $(BIN)/elicence worker --data-dir $(DATA_DIR) & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  ELICENCE_DEMO_MODE=$${ELICENCE_DEMO_MODE:-1} \
	  $(BIN)/elicence serve --data-dir $(DATA_DIR) --host $(HOST) --port $(PORT)

# The suite runs on every core, up to four workers (pytest-xdist), each test file on one worker so
# a module's demo domain is built once; TEST_JOBS=0 runs it in this process.
TEST_JOBS ?= auto
PARALLEL := -n $(TEST_JOBS) --maxprocesses 4 --dist loadfile

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q $(PARALLEL)

# The fast part while working: no browser, PostgreSQL, OpenBao, SoftHSM, fuzzing or other slow
# tests (marker `slow`, pyproject.toml); `make test` runs everything.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q $(PARALLEL) -m "not slow"

# A longer mutation run over a sealed licence (tests/test_fuzz.py; make test runs 100 examples).
fuzz: $(STAMP)
	ELICENCE_FUZZ_EXAMPLES=$${ELICENCE_FUZZ_EXAMPLES:-5000} $(BIN)/python -m pytest -q tests/test_fuzz.py

# Mutation testing of the security checks (docs/testing.md): every mutant of the modules below is
# run against the fast security tests; `make mutate MODULES="api/edge/auth.py seals/clients.py"` runs
# some modules only. One worker, at the lowest priority.
MUTATE_SCOPE := $(wildcard verify/*.py) core/audit.py keys/audit.py api/edge/auth.py api/edge/tokens.py \
  api/http/oauth.py seals/clients.py $(wildcard trust/federation*.py) licences/lifecycle.py \
  api/edge/code_desk.py
MODULES ?=
MUTATE_JOBS ?= 1
mutate: $(STAMP)
	mkdir -p mutants
	nice -n 19 $(BIN)/mutmut run --max-children $(MUTATE_JOBS) \
	  $(foreach m,$(MODULES),'$(subst /,.,$(m:.py=)).*') >mutants/run.log 2>&1 \
	  || { tail -n 40 mutants/run.log; exit 1; }
	$(BIN)/python -m tests.security.mutation_report $(or $(MODULES),$(MUTATE_SCOPE))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/vulture

typecheck: $(STAMP)
	$(BIN)/mypy core keys trust seals licences verify supervision api bench migrations

bench: $(STAMP)
	$(BIN)/python -m bench --full

bench-quick: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(DATA_DIR) .pytest_cache .mypy_cache .ruff_cache
