# The two commands of the README: `make run` and `make test`. Everything they need installs here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
export FLASK_APP := governance

.PHONY: run test test-sqlite test-postgres lint install serve browser screenshots load-test \
	fault-test bench audit-key redis multi-node-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The browser tests drive Debian's Chromium through Playwright (Playwright never downloads one);
# WeasyPrint subsets the report fonts with HarfBuzz (libharfbuzz-subset0).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests"
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core libharfbuzz-subset0

browser: $(CHROMIUM)

# Redis, for the task queue when the application spans machines (the multi-node test starts
# its own on a loopback port; nothing here starts the system's service).
REDIS_SERVER := /usr/bin/redis-server

$(REDIS_SERVER):
	@echo "installing Debian's redis-server for the multi-node test"
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server

redis: $(REDIS_SERVER)

# The instance's two secrets: the session key, and the audit chain's key (keep a copy of that
# one elsewhere: without it the audit trail cannot be verified).
instance/config.py:
	@mkdir -p instance
	@$(BIN)/python -c "import secrets; print('SECRET_KEY = %r' % secrets.token_hex(32)); \
		print('AUDIT_KEY = %r' % secrets.token_hex(32))" > $@
	@echo "wrote $@ with a new secret key and audit key"

# An instance/config.py written before audit keys gets one.
audit-key: | install instance/config.py
	@grep -q '^AUDIT_KEY' instance/config.py || { \
		$(BIN)/python -c "import secrets; print('AUDIT_KEY = %r' % secrets.token_hex(32))" \
			>> instance/config.py; \
		echo "added an audit key to instance/config.py: keep a copy of it"; }

instance/.demo-loaded: | install instance/config.py audit-key
	$(BIN)/flask init-db
	$(BIN)/flask seed-demo
	touch $@

# The development server and a task worker beside it (scripts/with-worker).
run: install instance/config.py audit-key instance/.demo-loaded
	GOVERNANCE_DEVELOPMENT=true scripts/with-worker \
		$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

lint: install
	$(BIN)/ruff check governance tests migrations

# The suite on both cores (pytest-xdist; the browser tests share one worker, so one browser
# and one live server start). Another count of workers: `make test WORKERS=4`.
WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup

# The suite on SQLite, then on PostgreSQL when one is available: TEST_DATABASE_URL, or the
# throwaway server of `scripts/local-postgres start` when it is running.
test: install browser redis lint test-sqlite
	@url="$${TEST_DATABASE_URL:-$$(scripts/local-postgres url 2>/dev/null || true)}"; \
	if [ -n "$$url" ]; then \
		echo "== the suite on PostgreSQL"; \
		TEST_DATABASE_URL="$$url" $(PYTEST); \
	else \
		echo "== no PostgreSQL server (TEST_DATABASE_URL unset, scripts/local-postgres not" \
			"running): the suite ran on SQLite only"; \
	fi

test-sqlite: install browser
	@echo "== the suite on SQLite"
	env -u TEST_DATABASE_URL $(PYTEST)

test-postgres: install browser redis
	TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$$(scripts/local-postgres start)}" \
		$(PYTEST)

# Production server: gunicorn (gunicorn.conf.py: WEB_CONCURRENCY workers, default 4) on
# 127.0.0.1:$(PORT) and a task worker (`flask worker`, TASK_WORKERS threads), SECRET_KEY and
# AUDIT_KEY from instance/config.py, schema brought up to date first. On several machines, run
# `flask worker` on one or more of them and set TASK_QUEUE_URL (README, "Several machines").
serve: install instance/config.py audit-key
	$(BIN)/flask init-db
	PORT=$(PORT) scripts/with-worker $(BIN)/gunicorn -c gunicorn.conf.py

.venv-load/.installed: | install
	$(PYTHON) -m venv .venv-load
	.venv-load/bin/pip install --quiet locust==2.47.0
	touch $@

# 50 API clients for 60 s against 4 gunicorn workers on SQLite, then PostgreSQL (loopback only);
# checks that no acknowledged write is lost and records the numbers in BENCHMARKS.md.
load-test: install .venv-load/.installed
	$(BIN)/python bench/load/run.py

# Every benchmark at one size (small, medium or large; not part of `make test`): data sets from
# bench/generate.py kept in instance/bench/, results in bench/results/bench.json and the summary
# at the top of BENCHMARKS.md, targets printed as met or missed. RUNS runs per figure.
SIZE ?= medium
RUNS ?= 3
bench: install
	$(BIN)/python bench/suite.py --size $(SIZE) --runs $(RUNS)

# Two application servers and a task worker against one PostgreSQL and one Redis, on loopback:
# a session, an upload and a report cross from one server to the other, and no acknowledged
# write is lost when one server is killed under load (the suite's PostgreSQL half runs it too).
multi-node-test: install redis
	$(BIN)/python bench/multinode/run.py

# Killed import worker, read-only database, full disk, PostgreSQL restart under load.
fault-test: install
	$(BIN)/python bench/faults/run.py

# Retake the README's screenshots (docs/screenshots/*.png) with the browser tests.
screenshots: install browser
	SCREENSHOT_DIR=docs/screenshots $(BIN)/python -m pytest tests/browser -q
