"""The records between the controller and the framework agent survive the trip as they were."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pytest_vmsnap.cycle.protocol import (
    AgentOptions,
    CycleRecord,
    Event,
    FreezeOptions,
    encode,
    snapshot_from_dict,
    snapshot_to_dict,
)
from pytest_vmsnap.framework.azure import codes
from pytest_vmsnap.framework.azure.cycle import run_cycle
from pytest_vmsnap.framework.interfaces import SnapshotResult
from pytest_vmsnap.framework.scripts import PROMPT


def _wire(line: bytes) -> dict:
    """What the other side reads: one JSON line."""
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    return json.loads(line)


def test_agent_options_round_trip() -> None:
    opts = AgentOptions("documented", "prompt", FreezeOptions((("/var/lib/app", "xfs"),)))
    got = AgentOptions.from_dict(_wire(encode("start", opts.to_dict()))["start"])
    assert got == opts


def test_agent_options_defaults_for_an_empty_start() -> None:
    assert AgentOptions.from_dict({}) == AgentOptions("extension", "faithful", FreezeOptions())


def test_snapshot_result_round_trip_and_a_missing_answer_is_a_failure() -> None:
    snap = SnapshotResult(0, True, "reflink", 0.25, "2 disk(s)", {"images": 2})
    wire = _wire(encode("snapshot_result", snapshot_to_dict(snap)))["snapshot_result"]
    assert snapshot_from_dict(wire) == snap
    missing = snapshot_from_dict({})
    assert (missing.code, missing.taken) == (codes.ERROR, False)


def test_event_round_trip() -> None:
    event = Event("pre_end", 1234.5)
    assert Event.from_message(_wire(event.encode())) == event


def test_a_real_cycle_record_keeps_every_key(tmp_path: Path) -> None:
    """A framework cycle with no config: the record read back has the framework's status, its
    codes and findings, and writes out the same JSON the framework produced."""
    os.chmod(tmp_path, 0o755)
    cycle = run_cycle(tmp_path, pacing=PROMPT).to_dict()
    record = CycleRecord.from_dict(json.loads(json.dumps(cycle)))
    assert record.status == cycle["status"] != 0
    assert record.health_code == cycle["health_code"]
    assert record.findings and record.findings == cycle["findings"]
    assert set(record.scripts) == {"pre", "post"}
    assert record.to_dict() == {k: cycle[k] for k in record.to_dict()}
    assert record.taken is cycle["snapshot"]["taken"]


def test_a_record_without_scripts_gets_both_not_run_records() -> None:
    record = CycleRecord.from_dict({"status": 1, "health_code": 0})
    for which in ("pre", "post"):
        assert record.scripts[which]["ran"] is False
        assert "attempts" in record.scripts[which]
    assert CycleRecord.from_dict({}).status == codes.ERROR


def test_a_framework_death_while_frozen_says_what_the_real_helper_would_do() -> None:
    """Errata E4: only SIGUSR1 or its own timeout thaws the real safefreeze."""
    from pytest_vmsnap.cycle.driver import died_frozen

    frozen = ["precheck_end", "pre_start", "pre_end", "freeze_start", "freeze_call", "frozen"]
    assert "only on SIGUSR1 or at its own timeout" in died_frozen(frozen)
    assert "only on SIGUSR1" in died_frozen([*frozen, "snapshot_start"])
    assert died_frozen([*frozen, "snapshot_start", "snapshot_end", "thawed"]) == ""
    assert died_frozen(["precheck_end", "pre_start"]) == ""
