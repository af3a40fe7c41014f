"""Failures a script hid behind exit code 0, read from what it printed.

The extension judges a script by its exit code alone. A script that runs ``psql`` or
``mariadb`` without stopping on errors, or calls a command that is not installed, can exit 0
after the very statement that should have quiesced the database failed. These lines, in the
output the harness kept, become findings; the verdict still rests on the restored copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..framework.records import Finding

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a database client reported an error", re.compile(r"^(?:psql:.*?)?(?:ERROR|FATAL):\s")),
    ("a database client reported an error", re.compile(r"^ERROR \d+ \(\w+\)")),  # mariadb
    ("a command was not found", re.compile(r"(?:: not found|command not found)$")),
    ("redis-cli reported an error", re.compile(r"^\(error\) ")),
)


def masked_failures(scripts: Mapping[str, Mapping[str, Any]]) -> list[Finding]:
    """One finding per script that exited 0 (or was not waited for) while its output says
    that something failed: the first such line, and how many there were."""
    findings: list[Finding] = []
    for which in ("pre", "post"):
        s = scripts.get(which) or {}
        if not s.get("ran") or s.get("exit_code") not in (0, None):
            continue  # a failing exit code is the framework's finding already
        hits = [
            (what, line.strip())
            for line in f"{s.get('stdout') or ''}\n{s.get('stderr') or ''}".splitlines()
            for what, pattern in PATTERNS
            if pattern.search(line.strip())
        ]
        if not hits:
            continue
        what, first = hits[0]
        more = f" ({len(hits)} such lines)" if len(hits) > 1 else ""
        findings.append(
            {
                "code": None,
                "name": "MaskedScriptFailure",
                "message": f"the {which}-script exited 0, but {what}: {first[:200]}{more}",
                "action": f"Make the {which}-script stop and exit non-zero when a command fails "
                "(`set -e`, psql -v ON_ERROR_STOP=1, check each exit code): the extension "
                "only sees the exit code.",
            }
        )
    return findings
