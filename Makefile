# Set up and run on the embedded defaults:  make run
# Set up and run the tests:                make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The slow fault-injection tests (marker "slow") run in CI; `make test PYTEST_ARGS=` runs them too.
# Two test processes (pytest-xdist): the tests mostly wait on servers and processes.
PYTEST_ARGS ?= -m "not slow" -n 2 --dist worksteal

.PHONY: install run test azurite odbc browser lint format bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python -m common.supervisor

# Azurite 3.35 is the newest that runs on Node 20. Installed once; a new version installs anew.
AZURITE_VERSION := 3.35.0
AZURITE := .tools/azurite/node_modules/.installed-azurite-$(AZURITE_VERSION)

$(AZURITE):
	npm install --prefix .tools/azurite azurite@$(AZURITE_VERSION) --no-audit --no-fund --loglevel=error
	@touch $@

azurite: $(AZURITE)

# unixODBC and PostgreSQL's ODBC driver carry the SQL Server bulk-path tests; installed when
# this runs as root on Debian/Ubuntu, otherwise those tests skip (and fail in CI).
odbc:
	@odbcinst -q -d 2>/dev/null | grep -q 'PostgreSQL Unicode' \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	            apt-get install -y -qq unixodbc odbc-postgresql >/dev/null; }; } \
	  || echo "note: install unixodbc and odbc-postgresql to run the ODBC tests"

# Debian's Chromium carries the dashboard's browser tests (Playwright drives it; it downloads
# no browser of its own); installed like the ODBC driver.
browser:
	@command -v chromium >/dev/null \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	            apt-get install -y -qq chromium >/dev/null; }; } \
	  || echo "note: install chromium to run the dashboard's browser tests"

test: install $(AZURITE) odbc browser
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
