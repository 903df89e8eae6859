# One command runs the app, one command passes the tests (README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/test
# Where `make run` serves.
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test system-deps test-fast test-postgres test-e2e test-js wire lint format bench bench-full deploy-env clean

$(STAMP): requirements.txt requirements-dev.txt bench/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# The same launcher as production (config/serve.py), DEBUG on, the in-memory
# layer unless REDIS_URL is set; static files come from WhiteNoise, which with
# DEBUG on reads them from static/ on every request as runserver did.
run: $(STAMP)
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput
	@echo
	@echo "  Open http://$(HOST):$(PORT)/ and sign up, or make an admin first:"
	@echo "    DEBUG=true $(PY) manage.py createsuperuser"
	@echo
	DEBUG=$${DEBUG:-true} $(PY) -m config.serve -b $(HOST) -p $(PORT)

# The whole suite: SQLite + in-memory layer, the model/service/protocol tests
# again on PostgreSQL, the multi-worker tests on Redis, the browser client's
# unit tests (Node), then real browsers.
test: system-deps $(STAMP)
	$(PY) -m pytest
	DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest -m postgres -p no:cacheprovider
	$(MAKE) test-js
	tests/e2e/run

# The Debian packages the suite needs (browsers, coturn, Caddy, Redis, PostgreSQL,
# Node...): installed when missing as root, else the one apt-get line to run.
system-deps:
	@scripts/system-deps

# The client's call state, protocol and signaling modules under Node's own test
# runner (no npm packages).
test-js: system-deps
	node --test tests/js/

# static/js/wire.js from rooms/protocol.py (tests/rooms/test_wire.py fails when it is stale).
wire: $(STAMP)
	DEBUG=true $(PY) manage.py export_wire

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# Style, then the direction of imports between our apps (pyproject.toml's
# import-linter contracts) and no import cycle between our modules.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) scripts/import_cycles.py

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) -m bench --quick

bench-full: $(STAMP)
	$(PY) -m bench --full

deploy-env:
	deploy/make-env

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
