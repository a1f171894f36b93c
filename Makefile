# Everyday targets. `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-servers lint typecheck format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start the whole service on an embedded PostgreSQL; prints endpoints and a demo ingest key.
run: $(STAMP)
	$(BIN)/aeos serve --demo

## Run the whole test suite (starts its own PostgreSQL unless AEOS_TEST_DATABASE_URL is set).
# Two pytest workers (one per core; each starts its own PostgreSQL): about 9 minutes
# instead of twice that. PYTEST_ARGS= runs serially.
PYTEST_ARGS ?= -n 2
test: $(STAMP) test-servers
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Real servers the tests start themselves, from Debian packages: Prometheus Alertmanager
# (alerting tests). Installed only when missing and apt-get exists (sudo when not root);
# a failed install warns, and the tests that need the server say how to install it.
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)
test-servers:
	@if ! command -v prometheus-alertmanager >/dev/null 2>&1 \
	    && ! command -v alertmanager >/dev/null 2>&1 \
	    && command -v apt-get >/dev/null 2>&1; then \
	  $(SUDO) apt-get update -qq >/dev/null 2>&1 || true; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    prometheus-alertmanager >/dev/null 2>&1 \
	    || echo "warning: could not install prometheus-alertmanager" >&2; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info
