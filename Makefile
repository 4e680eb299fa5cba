# Two commands for a newcomer: `make run` and `make test`.
# Both create .venv with Python 3.12+ and install what they need: `make run`
# the runtime packages and honcho, `make test` the test tools too.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# 8000, not 5000: macOS gives port 5000 to its AirPlay Receiver.
PORT ?= 8000

.PHONY: run test test-postgres lint bench bench-peers install staff-user clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12) and "Python 3.12+ is needed; set PYTHON=python3.13")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: requirements.txt requirements-run.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-run.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-run.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

# Everything: runtime, honcho, test and lint tools (CI runs this, then ruff).
install: $(VENV)/.installed-dev

# Web (gunicorn) and worker together, as the Procfile says, on SQLite.
# A busy port stops here with one line, before gunicorn's retries and tracebacks.
run: $(VENV)/.installed-run
	@$(BIN)/python scripts/check_port.py $(PORT)
	$(BIN)/python manage.py migrate --no-input
	DJANGO_DEBUG=1 REMINDER_DELAY=$${REMINDER_DELAY:-120} PATH="$(CURDIR)/$(BIN):$$PATH" \
		$(BIN)/honcho start -f Procfile -p $(PORT) web worker

# The whole suite. DATABASE_URL=postgres://... runs it on PostgreSQL.
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgres:
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} $(MAKE) test

# A staff user for /admin/ and /jobs/ on the local database; prompts for email and password.
staff-user: $(VENV)/.installed-run
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py create_staff_user

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m bench

# The peers (django-tasks-db, Procrastinate; delayed_job when Debian's
# ruby-delayed-job-active-record and ruby-pg are installed) on the same
# workloads in the same run, on PostgreSQL. They live in their own virtualenv:
# never the app's dependencies. BENCH_PEERS_ARGS=--quick for a smoke run.
PEERS_VENV := .venv-peers
$(PEERS_VENV)/.installed: bench/requirements-peers.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet -r bench/requirements-peers.txt
	@touch $@

bench-peers: install $(PEERS_VENV)/.installed
	$(BIN)/python -m bench.peers $(BENCH_PEERS_ARGS)

clean:
