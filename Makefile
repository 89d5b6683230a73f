# Set up and run on the embedded defaults:  make run
# Set up and run the tests:                make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make run` installs what running needs; `make install`, `make test` and `make lint` add the
# development tools on top.
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
# The slow fault-injection tests (marker "slow") run in CI; `make test PYTEST_ARGS=` runs them too.
# Four test processes (pytest-xdist) on two cores: the tests mostly wait on servers and
# processes, and four finish the suite a sixth sooner than two.
PYTEST_ARGS ?= -m "not slow" -n 4 --dist worksteal
PIP := $(BIN)/python -m pip --disable-pip-version-check
# Bytecode is written as modules are first imported, even where the environment says not to
# (PYTHONDONTWRITEBYTECODE): without it every process compiles its imports again, which
# triples the start of each API, worker and CLI process.
WRITE_BYTECODE := PYTHONDONTWRITEBYTECODE=

.PHONY: install run test test-live azurite tsql odbc browser lint format bench clean

# Bytecode is written by the first start, for the modules the service imports, not by pip for
# every module installed. pyarrow's wheel carries Arrow Flight, the S3 filesystem, C++ headers
# and its own tests, which no part of the service loads (only pyarrow/_flight* and
# pyarrow/_s3fs* link those libraries): about 60 MB, left out.
$(RUNTIME): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --no-compile -e .
	@cd "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/pyarrow" \
	  && rm -rf tests include src libarrow_flight.* libarrow_python_flight.* _flight.* \
	            libarrow_s3.* _s3fs.*
	@touch $@

$(DEV): $(RUNTIME)
	$(PIP) install --quiet -e '.[dev]'
	@touch $@

install: $(DEV)

run: $(RUNTIME)
	@LOG_FORMAT=$${LOG_FORMAT:-console} $(WRITE_BYTECODE) $(BIN)/python -m common.supervisor

# Azurite 3.35 is the newest that runs on Node 20. Installed once; a new version installs anew.
AZURITE_VERSION := 3.35.0
AZURITE := .tools/azurite/node_modules/.installed-azurite-$(AZURITE_VERSION)

$(AZURITE):
	npm install --prefix .tools/azurite azurite@$(AZURITE_VERSION) --no-audit --no-fund --loglevel=error
	@touch $@

azurite: $(AZURITE)

# The T-SQL grammar the SQL Server statement checks parse with (tests/support/tsql/); the
# runtime pinned below it, since newer ones do not load.
TSQL_GRAMMAR := .tools/tsql/node_modules/.installed-antlr4ts-sql-1.1.0

$(TSQL_GRAMMAR):
	npm install --prefix .tools/tsql antlr4ts-sql@1.1.0 antlr4ts@0.5.0-alpha.4 --no-audit --no-fund --loglevel=error
	@touch $@

tsql: $(TSQL_GRAMMAR)

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

test: $(DEV) $(AZURITE) $(TSQL_GRAMMAR) odbc browser
	$(WRITE_BYTECODE) $(BIN)/python -m pytest $(PYTEST_ARGS)

# The contract suites, the tour and the SQL Server suite against the compose stack
# (docs/deployment.md): `docker compose up -d sqlserver azurite servicebus` first.
TEST_SERVICEBUS_CONNECTION_STRING ?= Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;
TEST_AZURE_STORAGE_CONNECTION_STRING ?= DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://localhost:10000/devstoreaccount1;
TEST_MSSQL_URL ?= mssql+pyodbc://sa:$${MSSQL_SA_PASSWORD:-Ingest-Dev-Passw0rd}@localhost:1433/ingest?driver=ODBC+Driver+18+for+SQL+Server&TrustServerCertificate=yes
test-live: $(DEV) $(AZURITE) $(TSQL_GRAMMAR)
	TEST_SERVICEBUS_CONNECTION_STRING='$(TEST_SERVICEBUS_CONNECTION_STRING)' \
	TEST_AZURE_STORAGE_CONNECTION_STRING='$(TEST_AZURE_STORAGE_CONNECTION_STRING)' \
	TEST_MSSQL_URL="$(TEST_MSSQL_URL)" INGEST_REQUIRE_SERVICES=1 \
	$(WRITE_BYTECODE) $(BIN)/python -m pytest tests/contract tests/live $(PYTEST_ARGS)

# Figures, not pass/fail: the service against psql \copy, executemany and read_csv + to_sql.
bench: $(DEV)
	$(PIP) install --quiet -e '.[dev,bench]'
	$(WRITE_BYTECODE) $(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(DEV)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .tools .pytest_cache .mypy_cache .ruff_cache
