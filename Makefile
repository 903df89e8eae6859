# One command runs the app, one command passes the tests (README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test test-fast test-postgres test-e2e test-js wire lint format bench bench-full deploy-env clean

$(STAMP): requirements.txt requirements-dev.txt bench/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput
	@echo
	@echo "  Open http://127.0.0.1:8000/ and sign up, or make an admin first:"
	@echo "    DEBUG=true $(PY) manage.py createsuperuser"
	@echo
	DEBUG=$${DEBUG:-true} $(PY) manage.py runserver 127.0.0.1:8000

# The whole suite: SQLite + in-memory layer, the model/service/protocol tests
# again on PostgreSQL, the multi-worker tests on Redis, the browser client's
# unit tests (Node), then real browsers.
test: $(STAMP)
	$(PY) -m pytest
	DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest -m postgres -p no:cacheprovider
	$(MAKE) test-js
	tests/e2e/run

# The client's call state, protocol and signaling modules under Node's own test
# runner (no npm packages). As root without Node, Debian's nodejs is installed.
test-js:
	@command -v node >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 || \
	  { echo "make test-js: node missing; installing Debian's nodejs"; \
	    apt-get install -y -q nodejs || { apt-get update -q && apt-get install -y -q nodejs; }; }
	@command -v node >/dev/null 2>&1 || { echo "make test-js: the JavaScript unit tests need Node.js 18 or newer (node);" \
	  "install it (Debian: apt-get install nodejs) and run make test again" >&2; exit 1; }
	node --test tests/js/

# static/js/wire.js from rooms/protocol.py (tests/rooms/test_wire.py fails when it is stale).
wire: $(STAMP)
	DEBUG=true $(PY) manage.py export_wire

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

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
