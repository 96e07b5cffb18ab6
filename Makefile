# Two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck browser test-sqlite test-postgres schema bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Plain-text logs for a terminal; production logs are JSON lines (HUB_LOG_FORMAT).
run: $(STAMP)
	HUB_LOG_FORMAT=$${HUB_LOG_FORMAT:-text} $(BIN)/hub serve --demo

lint: $(STAMP)
	$(BIN)/ruff check hub tests bench
	$(BIN)/ruff format --check hub tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite runs twice: on an SQLite file with the in-process broker, then on PostgreSQL and Redis.
# Under CI=true a missing PostgreSQL or Redis fails the run instead of skipping.
test-sqlite: $(STAMP)
	HUB_TEST_BACKEND=sqlite $(BIN)/pytest

test-postgres: $(STAMP)
	HUB_TEST_BACKEND=postgres $(BIN)/pytest

# The browser tests (tests/console) drive Debian's chromium through Playwright; installed here when missing
# (as root; apt-get). Without it they are skipped, and under CI=true they fail.
browser: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
		echo "chromium is missing and could not be installed: the browser tests will not run"

test: lint typecheck browser test-sqlite test-postgres

schema: $(STAMP)
	$(BIN)/python -m hub.schema.export > schema.graphql

bench: $(STAMP)
	$(BIN)/python -m bench.pos_mix

clean:
	rm -rf $(VENV) hub.sqlite3* .hub-secret
