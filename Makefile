# Two commands set up a fresh machine: `make demo` (the whole pipeline, end to end) and
# `make test` (the whole test suite). Both create .venv and install the project first, as do
# the everyday targets: `make unit` (the fast tests), `make quick`, `make lint`, `make format`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_ARGS ?=

.PHONY: demo test quick unit lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/zixflow-queue demo

test: $(STAMP)
	$(BIN)/python .ci/with_redis.py $(BIN)/pytest -m "slow or not slow"

quick: $(STAMP)
	$(BIN)/python .ci/with_redis.py $(BIN)/pytest

# The tests that start no worker: no integration (real workers) and no slow (chaos) tests.
unit: $(STAMP)
	$(BIN)/python .ci/with_redis.py $(BIN)/pytest -m "not integration and not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python .ci/with_redis.py $(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
