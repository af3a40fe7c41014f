# pytest-vmsnap: `make demo` and `make test` set everything up on a fresh Debian 12 machine (root).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all deps setup test unit integration lint typecheck wheel-check demo bench soak catch-rate cleanup clean

all: test

deps:
	@bash scripts/install-deps.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

setup: deps $(STAMP)

## The whole suite: lint, unit, integration (root), coverage of the framework engine.
test: setup
	@bash scripts/run-tests.sh

unit: setup
	@$(PY) -m pytest tests/unit -q

integration: setup
	@$(PY) -m pytest tests/integration -q

lint: setup
	@$(PY) -m ruff check . && $(PY) -m ruff format --check .

## Types (mypy) and the one-way import contracts (import-linter), both in pyproject.toml.
typecheck: setup
	@$(PY) -m mypy && $(VENV)/bin/lint-imports --no-cache

## The built wheel alone: installed in a fresh venv, tested without the checkout (in `make test` too).
wheel-check: setup
	@bash scripts/wheel-check.sh

## The main job: `pytest --vmsnap` on the bundled SQLite example, with a summary at the end.
demo: setup
	@bash scripts/demo.sh

## Benchmarks (outside the default run): each script prints its own table.
bench: setup
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

## The fault soak (outside the default run): 200 cycles of broken scripts, kills and squeezes.
soak: setup
	@$(PY) bench/soak_faults.py

## Every catch test N times (default 20); each catch rate must be 100 %.
N ?= 20
catch-rate: setup
	@$(PY) bench/catch_rate.py -n $(N)

## Release leftovers (loop devices, mounts, VMs) of crashed runs, found by their tag.
cleanup: setup
	@$(VENV)/bin/vmsnap cleanup

clean:
	rm -rf $(VENV) build dist .tox *.egg-info .coverage htmlcov vmsnap-report
