# Two commands a newcomer needs: `make run` and `make test`. Both create .venv and install the
# requirements first (once, and again whenever a requirements file changes).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null || echo python3.11)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test test-postgres install bench-e2e bench-load clean

$(STAMP): requirements.txt requirements-nodeps.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
		|| echo "warning: $(PYTHON) is not Python 3.11; the pinned requirements are tested with 3.11"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) \
		|| { echo "python -m venv failed (Debian: apt-get install python3.11-venv); trying virtualenv"; \
		     rm -rf $(VENV) && $(PYTHON) -m pip install --quiet --user virtualenv && $(PYTHON) -m virtualenv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

install: $(STAMP)

# Migrate, load defaults, start Redis (embedded unless REDIS_URL), a Celery worker and Daphne; Ctrl-C stops all.
run: install
	$(PY) -m tools.launcher

# The whole suite; it starts the Redis, worker and web server it needs. Extra pytest arguments: PYTEST_ARGS=...
# pytest's own exit code is kept in test-results/pytest-exit-code (make itself exits 2 on any failure).
test: install
	@mkdir -p test-results && rm -f test-results/pytest-exit-code
	$(PY) -m pytest $(PYTEST_ARGS); code=$$?; echo $$code > test-results/pytest-exit-code; exit $$code

# The app's tests again on PostgreSQL (unit tests and the fault tests, which then run their system on it too),
# in a test database of this run's own. POSTGRES_URL names the server and a database to connect to.
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
test-postgres: install
	@mkdir -p test-results && rm -f test-results/pytest-postgres-exit-code
	DATABASE_URL=$(POSTGRES_URL) TEST_DATABASE_NAME=test_consult_$$$$ $(PY) -m pytest tests/consult tests/reliability $(PYTEST_ARGS); \
		code=$$?; echo $$code > test-results/pytest-postgres-exit-code; exit $$code

# Load and faults: 50 patients x 10 messages over websockets, then a database audit (bench/load.py --help).
bench-load: install
	$(PY) bench/load.py $(BENCH_ARGS)

# End-to-end latency: 10 concurrent patients over websockets against a system it starts itself.
bench-e2e: install
	$(PY) bench/e2e_latency.py

clean:
	rm -rf var .pytest_cache test-results
