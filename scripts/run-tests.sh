#!/bin/bash
# Run the whole suite the way CI does; pytest's exit 5 (nothing collected) is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
start=$(date +%s)

$PY -m ruff check . || { echo "ruff check failed"; exit 1; }
$PY -m ruff format --check . >/dev/null || { $PY -m ruff format --check .; exit 1; }
# Types, and imports that run one way only (contracts in pyproject.toml).
$PY -m mypy || { echo "mypy failed"; exit 1; }
.venv/bin/lint-imports --no-cache >/dev/null || { .venv/bin/lint-imports --no-cache; echo "import contracts broken"; exit 1; }

# Leftovers of an earlier run that crashed (its owner is dead) would hold loop devices.
.venv/bin/vmsnap cleanup || echo "run-tests: vmsnap cleanup reported a problem (going on)" >&2

$PY -m pytest --cov=pytest_vmsnap --cov-branch --cov-report= -q -p no:cacheprovider "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "run-tests: pytest collected no tests: that is a failure" >&2
  exit 1
fi
if [[ $rc -ne 0 ]]; then
  exit $rc
fi
echo "Branch coverage of the framework engine (pytest_vmsnap/framework):"
$PY -m coverage report --include='pytest_vmsnap/framework/*' --fail-under=90 || exit 1
# The distribution alone: the wheel in a fresh venv, its unit suite and a real cycle of the
# bundled example, without this checkout on the path.
bash scripts/wheel-check.sh || { echo "run-tests: the wheel check failed" >&2; exit 1; }
echo "run-tests: done in $(( $(date +%s) - start )) s"
