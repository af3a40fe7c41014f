#!/bin/bash
# `make demo`: run the zero-code battery (`pytest --vmsnap`) on the bundled SQLite example.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
# The bundled example and sample scripts are package data (pytest_vmsnap/data/); a wheel's
# user copies them out with `vmsnap example`. Git keeps only 644/755: give them the modes the
# framework demands on a real VM.
data=pytest_vmsnap/data
chmod 700 "$data"/sample_scripts/*/*.sh
chmod 600 "$data"/examples/*/VMSnapshotScriptPluginConfig.json
cd "$data/examples/sqlite"
# "=": a separate value that names an existing directory would be taken for a test path
# by pytest's early look for its ini file (before plugins load), and the repository's
# pyproject.toml would win over the example's.
"$repo/.venv/bin/python" -m pytest --vmsnap --vmsnap-report="$repo/vmsnap-report" \
  -p no:cacheprovider "$@"
rc=$?
if [[ $rc -eq 5 ]]; then echo "demo: nothing was collected" >&2; exit 1; fi
[[ -f $repo/vmsnap-report/index.html ]] && echo "HTML report: $repo/vmsnap-report/index.html"
exit $rc
