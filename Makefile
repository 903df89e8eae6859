# One command runs the app, one command passes the tests (README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test test-fast test-postgres test-e2e lint format bench bench-full deploy-env clean

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
# again on PostgreSQL, the multi-worker tests on Redis, then real browsers.
test: $(STAMP)
	$(PY) -m pytest
	DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest -m postgres -p no:cacheprovider
	tests/e2e/run

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
