"""Each application's correct sample pre/post pair, through the whole cycle: application-consistent.

One full ``cycle.run.run`` per application (SQLite, PostgreSQL 15, MariaDB 10.11, Redis 7): a
stand-in VM on loop disks in the reflink pool, the real database provisioned and written to by
the recorded workload, the framework cycle with the real freeze and snapshot, a restore into a
fresh VM and the oracle's verdict. Prompt pacing keeps each cycle to seconds.

The quiesce declaration follows what each correct script does: SQLite (``BEGIN IMMEDIATE`` held
by a background session), MariaDB (``FLUSH TABLES WITH READ LOCK`` held by a background
session) and Redis (``CLIENT PAUSE ... WRITE``) hold writes off between the end of the
pre-script and the post-script, so they run with ``quiesce="lock"`` and the quiesce probe is
judged; PostgreSQL's correct pre-script is a ``CHECKPOINT`` that holds nothing, so it runs with
``quiesce="none"`` and the probe's accepted write is reported, not judged.

Every assertion carries the cycle's evidence (verdict, reasons, framework status, scripts,
freeze, snapshot and the oracle record), and each test prints it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from appcycle import cycle_settings, evidence, require

from pytest_vmsnap.apps.base import BANK_TOTAL
from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.evidence import oracle

# app -> (quiesce declaration of its correct pair, data mount point that must be frozen)
APPS: dict[str, tuple[str, str]] = {
    "sqlite": ("lock", "/var/lib/app"),
    "postgres": ("none", "/var/lib/postgresql"),
    "mariadb": ("lock", "/var/lib/mysql"),
    "redis": ("lock", "/var/lib/redis"),
}


@pytest.mark.parametrize("app", list(APPS))
def test_correct_scripts_are_application_consistent(
    tmp_path: Path, root_required: None, app: str
) -> None:
    """The correct sample pair for ``app``: application-consistent, with the evidence for it."""
    require(app)
    quiesce, mount = APPS[app]
    d = run(cycle_settings(tmp_path, app, quiesce=quiesce)).to_dict()
    why = evidence(d)
    print(f"\n{app}: {why}")
    o = d["oracle"]

    assert d["verdict"] == oracle.APPLICATION, why
    assert d["error"] == "", why
    # The framework's side: both scripts ran and succeeded, one real freeze of the data disk
    # around a real snapshot.
    assert (d["status"], d["health_code"], d["consistency"]) == (0, 0, "application"), why
    for which in ("pre", "post"):
        assert d["scripts"][which]["ran"] and d["scripts"][which]["exit_code"] == 0, why
    assert d["freeze"]["frozen"] and d["freeze"]["mounts"] == [mount], why
    assert d["snapshot"]["taken"] and d["snapshot"]["backend"] == "reflink", why
    # The oracle's side: it started without repair, its own checks pass, every write
    # acknowledged before the pre-script returned is there, the bank total holds.
    assert o["started"] is True and o["repair_needed"] is False, why
    assert o["integrity_ok"] is True, why
    assert o["acked_before_pre"] > 0, why
    assert o["acked_missing"] == 0, why
    assert o["invariants_ok"] is True and o["bank_total"] == BANK_TOTAL, why
    assert o["writes_after_thaw_present"] == 0, why
    # The live application accepts writes again after the post-script.
    assert o["liveness_ok"] is True, why
    assert o["liveness"]["last"]["result"] == "accepted", why
    # The quiesce probe: a write on a fresh connection between the pre- and the post-script.
    probe = o["quiesce_probe"]
    assert probe is not None, why
    if quiesce == "lock":
        assert probe["result"] in ("blocked", "refused"), why
        assert o["quiesce_probe_ok"] is True, why
    else:  # PostgreSQL: CHECKPOINT holds nothing; the write goes through, reported only
        assert probe["result"] == "accepted", why
        assert o["quiesce_probe_ok"] is None, why
        # The restored server replayed its WAL (recorded, the designed path, not repair).
        assert o["recovery_needed"] is True, why
        assert any("redo" in note for note in o["notes"]), why
