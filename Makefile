# Earworm: `make run` to try it, `make test` to test it. Nothing to install but Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run test lint format check-migrations clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Earworm needs Python 3.11 (set PYTHON=...)")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Start Earworm on http://127.0.0.1:8000 with a job consumer (and the Spotify emulator in demo mode).
run: $(STAMP)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(PY) manage.py devserver

## The whole suite: SQLite and the embedded queue always; PostgreSQL and Redis too when DATABASE_URL is set.
test: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest -n 2 --create-db $(PYTEST_ARGS)
	@if [ -n "$$DATABASE_URL" ]; then \
		echo "--- again on PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)"; \
		$(PY) -m pytest -n 2 --create-db $(PYTEST_ARGS); \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy earworm

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check-migrations: $(STAMP)
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) staticfiles .mypy_cache .ruff_cache
