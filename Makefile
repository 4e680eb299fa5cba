# Two commands for a newcomer: `make run` and `make test`.
# Both create .venv with Python 3.12+ and install what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000

.PHONY: run test test-postgres lint bench install clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12) and "Python 3.12+ is needed; set PYTHON=python3.13")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

# Web (gunicorn) and worker together, as the Procfile says, on SQLite.
run: install
	$(BIN)/python manage.py migrate --no-input
	DJANGO_DEBUG=1 REMINDER_DELAY=$${REMINDER_DELAY:-120} PATH="$(CURDIR)/$(BIN):$$PATH" \
		$(BIN)/honcho start -f Procfile -p $(PORT) web worker

# The whole suite. DATABASE_URL=postgres://... runs it on PostgreSQL.
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgres:
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} $(MAKE) test

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m bench

clean:
