"""The pieces every framework's engine shares: the registry, the direct-exec runner, the
common record and capture step, hosting the user's files, and Azure's engine behind the
interface."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pytest_vmsnap.cycle.stage import StageError, stage_hosted
from pytest_vmsnap.framework import engines
from pytest_vmsnap.framework.direct import run_direct, spawner
from pytest_vmsnap.framework.engine import Generated, Given, Hosting, Placement
from pytest_vmsnap.framework.interfaces import (
    FreezeResult,
    NoOpSnapshotter,
    SnapshotResult,
    ThawResult,
)
from pytest_vmsnap.framework.outcome import (
    APPLICATION,
    NOT_QUIESCED,
    Call,
    FrameworkCycle,
    Timeline,
    capture,
)
from pytest_vmsnap.framework.scripts import SystemClock
from pytest_vmsnap.settings import Framework, Settings

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def _script(path: Path, body: str, mode: int = 0o755) -> Path:
    path.write_text(body)
    path.chmod(mode)
    return path


# --- the registry --------------------------------------------------------------------------------


def test_the_settings_name_every_framework_the_registry_has() -> None:
    assert Framework.values() == engines.NAMES


def test_an_unknown_framework_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown framework 'hyperv'; choose one of azure, gcp"):
        engines.get("hyperv")


def test_azure_is_reached_through_the_registry() -> None:
    engine = engines.get("azure", profile="documented")
    assert engine.name == "azure"
    assert "documented" in repr(engine)


# --- the direct-exec runner ----------------------------------------------------------------------


def test_a_script_is_executed_itself_with_its_args_and_its_output_read(tmp_path: Path) -> None:
    s = _script(tmp_path / "s", '#!/bin/sh\necho "out $1 $2"; echo err >&2; exit 3\n')
    r = run_direct("pre", [str(s), "freeze", "x"], timeout_s=5, spawn=spawner(ENV, "/"))
    assert (r.ran, r.exit_code, r.error_code, r.timed_out) == (True, 3, 1, False)
    assert r.stdout.text() == "out freeze x\n" and r.stderr.text() == "err\n"


def test_no_shebang_cannot_be_executed(tmp_path: Path) -> None:
    s = _script(tmp_path / "s", "echo hello\n")
    r = run_direct("pre", [str(s)], timeout_s=5, spawn=spawner(ENV, "/"))
    assert not r.ran and r.error_code == 1 and r.exit_code is None
    assert r.start_error == "Exec format error (s)"


def test_no_exec_bit_cannot_be_executed(tmp_path: Path) -> None:
    s = _script(tmp_path / "s", "#!/bin/sh\nexit 0\n", mode=0o644)
    r = run_direct("pre", [str(s)], timeout_s=5, spawn=spawner(ENV, "/"))
    # Even root: execve(2) needs an exec bit for someone.
    assert not r.ran and r.start_error == "Permission denied (s)"


def test_a_timed_out_script_is_killed_with_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    s = _script(tmp_path / "s", f"#!/bin/sh\nsleep 60 &\necho $! > {marker}\nsleep 60\n")
    t = time.monotonic()
    r = run_direct("pre", [str(s)], timeout_s=0.5, spawn=spawner(ENV, "/"))
    assert r.timed_out and r.exit_code is None and r.error_code == 1
    assert 0.5 <= time.monotonic() - t < 5
    child = int(marker.read_text())
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text()


def test_a_timed_out_script_can_be_left_running(tmp_path: Path) -> None:
    s = _script(tmp_path / "s", "#!/bin/sh\nsleep 60\n")
    r = run_direct("pre", [str(s)], timeout_s=0.2, spawn=spawner(ENV, "/"), kill_on_timeout=False)
    try:
        assert r.timed_out and r.left_running and Path(f"/proc/{r.left_running[0]}").exists()
    finally:
        for pid in r.left_running:
            os.killpg(pid, 9)


def test_output_to_dev_null_is_not_captured(tmp_path: Path) -> None:
    s = _script(tmp_path / "s", "#!/bin/sh\necho lost\nexit 0\n")
    r = run_direct("pre", [str(s)], timeout_s=5, spawn=spawner(ENV, "/", output=False))
    assert r.exit_code == 0 and r.stdout.total == 0


def test_the_agent_environment_and_directory_are_the_scripts(tmp_path: Path) -> None:
    s = _script(tmp_path / "s", '#!/bin/sh\necho "$PWD|${HOME-unset}|$X"\n')
    r = run_direct("pre", [str(s)], timeout_s=5, spawn=spawner({**ENV, "X": "1"}, str(tmp_path)))
    assert r.stdout.text() == f"{tmp_path}|unset|1\n"


# --- the common record and capture step ---------------------------------------------------------


class Recorder:
    """A freezer and snapshotter that record the order of calls."""

    real = True

    def __init__(self, freeze_code: int = 0, snap_ok: bool = True) -> None:
        self.calls: list[str] = []
        self.freeze_code, self.snap_ok = freeze_code, snap_ok

    def freeze(self) -> FreezeResult:
        self.calls.append("freeze")
        return FreezeResult(self.freeze_code, "", ["/data"])

    def thaw(self) -> ThawResult:
        self.calls.append("thaw")
        return ThawResult(0, "", {"/data": 0.25}, (100.0, 100.25))

    def snapshot(self) -> SnapshotResult:
        self.calls.append("snapshot")
        return SnapshotResult(0 if self.snap_ok else 2, self.snap_ok, "fake")


def test_capture_freezes_snapshots_and_thaws_reporting_each_event() -> None:
    rec, events = Recorder(), []
    result = FrameworkCycle("vmware", freezes=True)
    tl = Timeline(result, SystemClock(), events.append)
    out = capture(result, rec, rec, tl, freeze_fs=True)
    assert out.ok and rec.calls == ["freeze", "snapshot", "thaw"]
    assert events == [
        "freeze_start",
        "freeze_call",
        "frozen",
        "snapshot_start",
        "snapshot_end",
        "thawed",
    ]
    assert result.froze and result.frozen_s == 0.25
    assert [p.phase for p in result.timeline] == ["freeze", "snapshot", "thaw"]


def test_a_failed_freeze_takes_no_snapshot() -> None:
    rec = Recorder(freeze_code=121)
    result = FrameworkCycle("qemu-ga", freezes=True)
    out = capture(result, rec, rec, Timeline(result, SystemClock(), lambda e: None), freeze_fs=True)
    assert out.freeze_failed and rec.calls == ["freeze"] and not result.snapshot_taken


def test_without_a_freeze_only_the_snapshot_is_taken_and_thawed_never() -> None:
    rec, events = Recorder(snap_ok=False), []
    result = FrameworkCycle("gcp")
    out = capture(result, rec, rec, Timeline(result, SystemClock(), events.append), freeze_fs=False)
    assert out.snapshot_failed and rec.calls == ["snapshot"]
    assert events == ["snapshot_start", "snapshot_end"]


def test_the_record_keeps_azures_keys_and_adds_the_frameworks_own() -> None:
    from pytest_vmsnap.framework.scripts import ScriptResult

    pre = ScriptResult("pre", ["/x", "freeze"], ran=True, exit_code=0)
    result = FrameworkCycle("vmware", status=NOT_QUIESCED, outcome="X", froze=True)
    result.calls = [Call("freeze", "/x", pre)]
    result.snapshot = SnapshotResult(0, True, "fake")
    d = result.to_dict()
    assert (d["framework"], d["outcome"], d["status"], d["consistency"]) == (
        "vmware",
        "X",
        1,
        "filesystem",
    )
    assert d["calls"][0]["phase"] == "freeze" and d["calls"][0]["path"] == "/x"
    assert d["scripts"]["post"]["ran"] is False
    result.status = APPLICATION
    assert result.to_dict()["consistency"] == "application"
    assert FrameworkCycle("gcp").to_dict()["consistency"] == "none"  # no snapshot


# --- hosting the user's files --------------------------------------------------------------------


def test_hosted_files_land_where_the_framework_looks_and_generated_ones_beside(
    tmp_path: Path,
) -> None:
    pre = _script(tmp_path / "my-pre.sh", "#!/bin/sh\n", 0o750)
    hosting = Hosting(
        placements=(Placement("pre", "/etc/google/snapshots/pre.sh"),),
        generated=(Generated("/etc/default/instance_configs.cfg", b"[Snapshots]\n", 0o644, "x"),),
    )
    staged = stage_hosted(tmp_path / "root", hosting, {"pre": pre})
    placed = tmp_path / "root/etc/google/snapshots/pre.sh"
    assert placed.read_text() == "#!/bin/sh\n" and placed.stat().st_mode & 0o777 == 0o750
    cfg = tmp_path / "root/etc/default/instance_configs.cfg"
    assert cfg.read_bytes() == b"[Snapshots]\n" and cfg.stat().st_mode & 0o777 == 0o644
    assert staged.sources[0].location == "/etc/google/snapshots/pre.sh"
    assert staged.notes == ["the harness wrote /etc/default/instance_configs.cfg: x"]


def test_declared_modes_apply_to_a_hook(tmp_path: Path) -> None:
    hook = _script(tmp_path / "50-db.sh", "#!/bin/sh\n", 0o644)
    hosting = Hosting(placements=(Placement("hook", "/etc/qemu/fsfreeze-hook.d/50-db.sh"),))
    stage_hosted(tmp_path / "root", hosting, {"hook": hook}, modes=(("hook", 0o700),))
    placed = tmp_path / "root/etc/qemu/fsfreeze-hook.d/50-db.sh"
    assert placed.stat().st_mode & 0o777 == 0o700


def test_a_refused_hosting_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(StageError, match=r"^qemu-ga calls one hook$"):
        stage_hosted(tmp_path, Hosting(refused="qemu-ga calls one hook"), {})


def test_hosted_paths_never_leave_the_root(tmp_path: Path) -> None:
    (tmp_path / "root/etc").mkdir(parents=True)
    (tmp_path / "root/etc/google").symlink_to(tmp_path / "outside")
    pre = _script(tmp_path / "pre.sh", "#!/bin/sh\n")
    hosting = Hosting(placements=(Placement("pre", "/etc/google/snapshots/pre.sh"),))
    stage_hosted(tmp_path / "root", hosting, {"pre": pre})
    assert not (tmp_path / "outside").exists()
    assert (tmp_path / "root" / str(tmp_path / "outside").lstrip("/") / "snapshots/pre.sh").exists()


# --- Azure behind the interface ------------------------------------------------------------------


def test_azure_hosts_scripts_where_the_config_names_them() -> None:
    config = json.dumps({"preScriptLocation": "/opt/p.sh", "postScriptLocation": "/opt/q.sh"})
    h = engines.get("azure").host(Given(frozenset({"config", "pre", "post"}), config.encode()))
    assert [(p.role, p.location) for p in h.placements] == [
        ("config", "/etc/azure/VMSnapshotScriptPluginConfig.json"),
        ("pre", "/opt/p.sh"),
        ("post", "/opt/q.sh"),
    ]


def test_azure_without_a_config_gets_the_smallest_one_for_a_hook() -> None:
    h = engines.get("azure").host(Given(frozenset({"hook"}), hook_name="50-db.sh"))
    (gen,) = h.generated
    config = json.loads(gen.content)
    assert (config["preScriptLocation"], config["preScriptParams"]) == (
        "/etc/azure/50-db.sh",
        ["freeze"],
    )
    assert (config["postScriptLocation"], config["postScriptParams"]) == (
        "/etc/azure/50-db.sh",
        ["thaw"],
    )
    assert gen.mode == 0o600 and h.calls.startswith("sh /etc/azure/50-db.sh freeze")


def test_azure_runs_a_generated_config_end_to_end(tmp_path: Path) -> None:
    """The smallest config the harness writes is one the pre-check accepts."""
    pre = _script(tmp_path / "pre", "#!/bin/sh\nexit 0\n", 0o700)
    post = _script(tmp_path / "post", "#!/bin/sh\nexit 0\n", 0o700)
    engine = engines.get("azure")
    hosting = engine.host(Given(frozenset({"pre", "post"})))
    if os.geteuid() != 0:
        pytest.skip("the pre-check wants the files owned by root")
    stage_hosted(tmp_path / "root", hosting, {"pre": pre, "post": post})
    from pytest_vmsnap.framework.scripts import PROMPT

    result = engine.run_cycle(tmp_path / "root", snapshotter=NoOpSnapshotter(), pacing=PROMPT)
    assert result.status == 0, result.to_dict()["findings"]


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("framework", "role", "expected"),
    [
        ("gcp", "document", "document is the SSM command document of aws-dlm"),
        ("azure", "document", "document is the SSM command document of aws-dlm"),
        ("azure", "hook", "azure runs the scripts its config names: give the hook as pre"),
    ],
)
def test_files_a_framework_does_not_take_are_usage_errors(
    tmp_path: Path, framework: str, role: str, expected: str
) -> None:
    f = _script(tmp_path / "f", "{}")
    s = Settings(framework=framework, config=f, pre=f, post=f, app="sqlite", vm="dir")
    assert any(p.startswith(expected) for p in s.with_(**{role: f}).problems()), s.problems()


# --- engine options ------------------------------------------------------------------------------


def test_engine_options_are_set_by_name_and_checked() -> None:
    engine = engines.get("qemu-ga", options={"host_tool": "proxmox", "hook_bound_s": "5"})
    assert (engine.host_tool, engine.hook_bound_s) == ("proxmox", 5.0)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"qemu-ga option host_tool: 'xen' is not one of"):
        engines.get("qemu-ga", options={"host_tool": "xen"})
    with pytest.raises(ValueError, match=r"gcp has no option 'host_tool' \(its options: disks"):
        engines.get("gcp", options={"host_tool": "proxmox"})
    with pytest.raises(ValueError, match=r"azure has no option 'x' \(its options: none"):
        engines.get("azure", options={"x": "1"})


def test_engine_options_travel_to_the_agent_and_are_usage_errors_when_wrong(
    tmp_path: Path,
) -> None:
    from pytest_vmsnap.cycle.protocol import AgentOptions

    opts = AgentOptions(framework="qemu-ga", framework_options=(("host_tool", "proxmox"),))
    assert AgentOptions.from_dict(json.loads(json.dumps(opts.to_dict()))) == opts
    hook = _script(tmp_path / "h.sh", "#!/bin/sh\n")
    s = Settings(framework="qemu-ga", hook=hook, app="sqlite", vm="dir")
    bad = s.with_(framework_options=(("host_tool", "xen"),))
    assert "framework_options: qemu-ga option host_tool: 'xen' is not one of libvirt, proxmox" in (
        bad.problems()
    )
    assert not [
        p
        for p in s.with_(framework_options=(("host_tool", "proxmox"),)).problems()
        if p.startswith("framework_options")
    ]
