# make install | run | test | lint | bench  (see README.md)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast lint bench dr-drill clean

install: $(STAMP)

# The app itself goes in editable (its code stays here), so .venv/bin/flask --app wsgi works from
# any directory; redone only when requirements or pyproject.toml change.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(STAMP)

run: install
	$(BIN)/python scripts/launch.py

# The whole suite: layer contracts, then every test (SQLite and PostgreSQL, real Redis, workers).
test: install
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Unit tests only: no database, no Redis; seconds.
test-fast: install
	$(BIN)/python -m pytest tests/unit -q

# ruff (its S rules are bandit's), import contracts, then bandit (no unreviewed medium/high
# finding) and pip-audit (skipped, with the reason printed, when the advisory service is offline).
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python scripts/security_checks.py

# Recovery drill: seed, load, back up, destroy the database, restore into a fresh one, verify;
# prints the measured RTO and RPO. Needs PostgreSQL and Redis like `make test` (DR_ARGS passes
# options, e.g. DR_ARGS="--load-seconds 20 --threads 8").
dr-drill: install
	$(BIN)/python scripts/dr_drill.py $(DR_ARGS)

bench: install
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
