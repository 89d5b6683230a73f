# Set up and run on the embedded defaults:  make run
# Set up and run the tests:                make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The slow fault-injection tests (marker "slow") run in CI; `make test PYTEST_ARGS=` runs them too.
PYTEST_ARGS ?= -m "not slow"

.PHONY: install run test test-all lint format bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python -m common.supervisor

AZURITE := .tools/azurite/node_modules/.bin/azurite-blob

# Azurite 3.35 is the newest that runs on Node 20.
$(AZURITE):
	npm install --prefix .tools/azurite azurite@3.35.0 --no-audit --no-fund --loglevel=error

test: install $(AZURITE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Figures, not pass/fail: the service against psql \copy, executemany and read_csv + to_sql.
bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .tools .pytest_cache .mypy_cache .ruff_cache
