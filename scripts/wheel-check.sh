#!/bin/bash
# `make wheel-check` (and `tox -e wheel`): the distribution works alone, without this checkout.
#  1. `python -m build` (sdist, then the wheel from the sdist) and `twine check --strict`;
#  2. a fresh virtual environment with only the wheel (`[test]` extra) installed in it;
#  3. from a scratch directory holding a copy of tests/ and the files they read, never the
#     package's source: the unit suite, against the installed package (arguments go to it);
#  4. the installed package's own bundled SQLite example (`vmsnap example`): `vmsnap lint`,
#     `pytest --vmsnap -k lint` (the plugin's entry point) and, as root, a real `vmsnap run`
#     (Azure's SQLite example, and qemu-ga's).
# Builds without build isolation (setuptools comes with the `test` extra): only the fresh
# venv's `pip install` asks pip's configured index, for what the `test` extra already fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
PY=${PY:-$repo/.venv/bin/python}
start=$(date +%s)
say() { echo "wheel-check: $*"; }
# Not under /tmp: a stand-in VM has a /tmp of its own, and the venv must be seen inside it.
work=$(mktemp -d "${VMSNAP_WHEEL_CHECK_DIR:-/var/tmp}/vmsnap-wheel-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. Build and check the distribution's metadata and long description.
if ! "$PY" -m build --no-isolation --outdir "$work/dist" . >"$work/build.log" 2>&1; then
  cat "$work/build.log"; say "build failed"; exit 1
fi
COLUMNS=200 "$PY" -m twine --no-color check --strict "$work"/dist/* | sed 's/^/wheel-check: /'
wheel=$(echo "$work"/dist/*.whl)
unzip -Z1 "$wheel" >"$work/wheel-files.txt"
say "$(basename "$wheel"): $(( $(stat -c %s "$wheel") / 1024 )) KiB, $(wc -l <"$work/wheel-files.txt") files"
for needed in pytest_vmsnap/py.typed pytest_vmsnap/data/examples/sqlite/pyproject.toml \
  pytest_vmsnap/data/sample_scripts/sqlite/pre.sh pytest_vmsnap/vm/docker/recipes/sqlite/Dockerfile; do
  grep -qx "$needed" "$work/wheel-files.txt" || { say "$needed is not in the wheel"; exit 1; }
done

# 2. A fresh venv (no system site-packages), the wheel and its test extra only.
"$PY" -m venv "$work/venv"
venv=$work/venv
"$venv/bin/python" -m pip install -q --no-compile "$wheel[test]" 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
"$venv/bin/python" -c "import pytest_vmsnap" || { say "the wheel did not install"; exit 1; }
say "installed into a fresh venv: $("$venv/bin/vmsnap" --version)"

# 3. The unit suite from a scratch copy: tests/ and the files they read, no package source.
src=$work/src
mkdir "$src"
cp -r tests fixtures examples docs scripts pyproject.toml README.md LICENSE "$src/"
find "$src" -name __pycache__ -prune -exec rm -rf {} +
cd "$src"
where=$("$venv/bin/python" -c "import pytest_vmsnap; print(pytest_vmsnap.__file__)")
case $where in
  "$venv"/*) ;;
  *) say "pytest_vmsnap is imported from $where, not the wheel"; exit 1 ;;
esac
say "unit suite against $where"
if ! "$venv/bin/pytest" tests/unit -q -p no:cacheprovider "$@" >"$work/unit.log" 2>&1; then
  tail -n 60 "$work/unit.log"; say "the unit suite failed against the wheel"; exit 1
fi
say "unit: $(tail -n 1 "$work/unit.log" | tr -d '=' | xargs)"

# 4. The bundled SQLite example, taken from the installed package.
cd "$work"
"$venv/bin/vmsnap" example --app sqlite app >/dev/null
root=$work/machine
mkdir -p "$root/etc/azure/sqlite"
cp -p app/backup/VMSnapshotScriptPluginConfig.json "$root/etc/azure/"
cp -p app/backup/pre.sh app/backup/post.sh "$root/etc/azure/sqlite/"
"$venv/bin/vmsnap" lint --root "$root" | sed 's/^/wheel-check: lint: /'
cd "$work/app"
"$venv/bin/vmsnap" lint --config backup/VMSnapshotScriptPluginConfig.json \
  --pre backup/pre.sh --post backup/post.sh | sed 's/^/wheel-check: lint: /'
if ! "$venv/bin/pytest" --vmsnap -k lint -p no:cacheprovider >"$work/plugin.log" 2>&1 \
  || ! grep -qE "^=+ [0-9]+ passed" "$work/plugin.log"; then
  cat "$work/plugin.log"; say "pytest --vmsnap -k lint failed"; exit 1
fi
say "pytest --vmsnap -k lint: $(grep -E "^=+ [0-9]+ passed" "$work/plugin.log" | tr -d '=' | xargs)"
if [[ $(id -u) -eq 0 ]]; then
  # Exit 0 only for an application-consistent verdict.
  if ! "$venv/bin/vmsnap" run --config backup/VMSnapshotScriptPluginConfig.json \
    --pre backup/pre.sh --post backup/post.sh --app sqlite --quiesce lock \
    --json "$work/run.json" >"$work/run.log" 2>&1; then
    cat "$work/run.log"; say "vmsnap run on the bundled example failed"; exit 1
  fi
  sed 's/^/wheel-check: run: /' "$work/run.log"
  # Another framework's engine, from the installed package alone: qemu-ga's SQLite example
  # (its hook written 0755 by vmsnap example: a wheel keeps no exec bit).
  cd "$work"
  "$venv/bin/vmsnap" example --framework qemu-ga --app sqlite qga >/dev/null
  if ! "$venv/bin/vmsnap" run --framework qemu-ga --hook qga/backup/sqlite.sh --app sqlite \
    --quiesce lock >"$work/qga.log" 2>&1; then
    cat "$work/qga.log"; say "vmsnap run --framework qemu-ga on its example failed"; exit 1
  fi
  sed 's/^/wheel-check: run: /' "$work/qga.log"
else
  say "not root: the real cycle (loop devices, fsfreeze) is skipped"
fi
say "done in $(( $(date +%s) - start )) s"
