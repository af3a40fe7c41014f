"""Privileged writers: a quiesce that stops only the application user is not a lock.

The workload and the probes write as the application user and as a privileged user (MariaDB's
root, PostgreSQL's superuser, Redis's default user, a second SQLite process; ``writers``
setting). ``read_only`` refuses the first and not the second, as it does not stop root's
cron jobs, admin tools or replication in production.

- MariaDB, FLUSH TABLES WITH READ LOCK and ``SET GLOBAL read_only = ON`` in a client that exits
  (the lock ends with it, only read_only stays), declared ``quiesce="lock"``: the application
  user's probe is refused (1290) but root's write goes through, and root's writes to the
  MyISAM table leave it "not closed properly" in the snapshot: below application-consistent,
  with the reason in words. With the application user alone the same set-up passes: that
  blind spot is what the privileged writer closes.
- The correct pairs stay application-consistent with both writers: MariaDB's held FTWRL and
  SQLite's held write lock block root and the second process too, Redis's ``CLIENT PAUSE
  WRITE`` holds the default user as well, and PostgreSQL's CHECKPOINT holds nobody
  (``quiesce="none"``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from appcycle import cycle_settings, evidence, require

from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.evidence import oracle

pytestmark = pytest.mark.catch

READ_ONLY_PRE = """#!/bin/sh
# Test script (BROKEN on purpose): FLUSH TABLES WITH READ LOCK and read_only in one client that
# exits at once. The lock belongs to that session and ends with it; only read_only stays, which
# refuses the application user (no SUPER / READ_ONLY ADMIN) but not root.
set -eu
mariadb -e "FLUSH TABLES WITH READ LOCK; SET GLOBAL read_only = ON;"
echo "pre: flushed, read-only"
"""
READ_ONLY_POST = """#!/bin/sh
# Test script: undo the pre-script's read_only.
set -eu
mariadb -e "SET GLOBAL read_only = OFF;"
echo "post: read_only off"
"""


def _cycle(settings: Any, label: str) -> tuple[dict[str, Any], str]:
    began = time.monotonic()
    d = run(settings).to_dict()
    why = evidence(d)
    print(f"\n{label}: {d['verdict']} in {time.monotonic() - began:.1f} s\n{why}")
    assert d["error"] == "", why
    return d, why


def _by_role(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["role"]: p for p in records}


def test_mariadb_read_only_without_a_held_lock_is_caught(
    tmp_path: Path, root_required: None
) -> None:
    """The reproduction: FTWRL + read_only in a client that exits, quiesce = lock, both
    writers. The app user's probe is refused as read-only, root's is accepted: the reasons
    say that only read_only held writers, and the verdict is below application-consistent."""
    require("mariadb")
    settings = cycle_settings(
        tmp_path, "mariadb", READ_ONLY_PRE, READ_ONLY_POST, quiesce="lock", writers="both"
    )
    d, why = _cycle(settings, "mariadb read_only, both writers")
    o = d["oracle"]
    probes = _by_role(o["quiesce_probes"])
    assert d["verdict"] == oracle.CRASH, why
    assert d["status"] == 0, why  # the framework itself saw nothing wrong
    assert any(oracle.READ_ONLY_ONLY in r for r in d["reasons"]), why
    assert probes["app"]["result"] == "refused" and probes["app"]["read_only"] is True, why
    assert probes["app"]["detail"].startswith("1290"), why
    assert probes["privileged"]["result"] == "accepted", why
    assert o["only_read_only_held"] is True and o["quiesce_probe_ok"] is False, why
    assert o["quiesce_probe"]["role"] == "privileged", why
    # Root wrote the MyISAM table through the "quiesced" window and the freeze.
    assert o["repair_needed"] is True, why
    assert any("vmsnap_events" in n and "closed" in n for n in o["notes"]), why
    # Every role's acknowledged writes are in the snapshot; the post-script undid read_only.
    assert o["acked_by_role"]["privileged"]["before_pre"] > 0, why
    assert o["acked_missing"] == 0 and o["liveness_ok"] is True, why
    assert {p["role"] for p in o["liveness_probes"]} == {"app", "privileged"}, why


def test_mariadb_read_only_passes_with_the_app_writer_alone(
    tmp_path: Path, root_required: None
) -> None:
    """The same set-up with ``writers="app"`` (the harness before privileged writers): the app
    user is refused, nothing else writes, the MyISAM table stays closed: application-consistent.
    The blind spot the case above closes."""
    require("mariadb")
    settings = cycle_settings(
        tmp_path, "mariadb", READ_ONLY_PRE, READ_ONLY_POST, quiesce="lock", writers="app"
    )
    d, why = _cycle(settings, "mariadb read_only, app writer alone")
    o = d["oracle"]
    assert d["verdict"] == oracle.APPLICATION, why
    assert {p["role"] for p in o["quiesce_probes"]} == {"app"}, why
    assert o["quiesce_probe"]["result"] == "refused" and o["only_read_only_held"] is None, why
    assert set(o["acked_by_role"]) == {"app"}, why


def test_mariadb_held_lock_holds_both_writers(tmp_path: Path, root_required: None) -> None:
    """The sample pair (FTWRL held in a background session until the post-script) blocks root
    as well as the application user: application-consistent with both writers."""
    require("mariadb")
    settings = cycle_settings(tmp_path, "mariadb", quiesce="lock", writers="both")
    d, why = _cycle(settings, "mariadb sample pair, both writers")
    o = d["oracle"]
    probes = _by_role(o["quiesce_probes"])
    assert d["verdict"] == oracle.APPLICATION, why
    assert probes["app"]["result"] == "blocked", why
    assert probes["privileged"]["result"] == "blocked", why
    assert "backup lock" in probes["privileged"]["detail"], why
    assert o["acked_by_role"]["privileged"]["before_pre"] > 0, why
    assert o["only_read_only_held"] is False, why


@pytest.mark.parametrize(
    ("app", "quiesce", "held"),
    [("postgres", "none", "accepted"), ("sqlite", "lock", "blocked"), ("redis", "lock", "blocked")],
)
def test_correct_pairs_hold_both_writers(
    tmp_path: Path, root_required: None, app: str, quiesce: str, held: str
) -> None:
    """Each application's correct sample pair with both writers: application-consistent, both
    roles probed, both roles' acknowledged writes in the snapshot."""
    require(app)
    settings = cycle_settings(tmp_path, app, quiesce=quiesce, writers="both")
    d, why = _cycle(settings, f"{app} sample pair, both writers")
    o = d["oracle"]
    probes = _by_role(o["quiesce_probes"])
    assert d["verdict"] == oracle.APPLICATION, why
    assert set(probes) == {"app", "privileged"}, why
    assert probes["app"]["result"] == held and probes["privileged"]["result"] == held, why
    for role in ("app", "privileged"):
        assert o["acked_by_role"][role]["before_pre"] > 0, why
        assert o["acked_by_role"][role]["missing"] == 0, why
    assert o["liveness_ok"] is True and len(o["liveness_probes"]) == 2, why
