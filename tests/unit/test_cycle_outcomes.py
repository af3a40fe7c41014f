"""Conformance of the classic-flow cycle (spec sections 5 and 6, one test per table row).

Each case builds a small root directory with real files (JSON 600, scripts 700, owned by root
since the suite runs as root), tiny ``sh`` scripts, PROMPT pacing and a fake clock, and fake
freezer/snapshotter classes that record calls into one shared event list. A pre/post script
named ``*hang*`` is handed a fake never-ending process, so timeouts cost no real time.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap.framework.azure import codes
from pytest_vmsnap.framework.azure.checks import precheck
from pytest_vmsnap.framework.azure.cycle import CycleResult, run_cycle
from pytest_vmsnap.framework.azure.profiles import DOCUMENTED, EXTENSION, Profile
from pytest_vmsnap.framework.interfaces import FreezeResult, SnapshotResult, ThawResult
from pytest_vmsnap.framework.scripts import FAITHFUL, PROMPT, Pacing, spawn_script

NO_SUCH_PID = 4_194_305  # above the largest possible pid_max: never a real process
NO_PASSWD_UID = 2_000_123_456

NAME = {c.number: c.name for c in codes.CODES.values()}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeProcess:
    """A process that ends (with ``code``) when the fake clock reaches ``exit_at``."""

    def __init__(self, clock: FakeClock, exit_at: float = math.inf, code: int = 0) -> None:
        self.clock, self.exit_at, self.code = clock, exit_at, code
        self.pid = NO_SUCH_PID
        self.returncode: int | None = None
        self.stdout = self.stderr = None

    def poll(self) -> int | None:
        if self.returncode is None and self.clock.now >= self.exit_at:
            self.returncode = self.code
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.poll() is None:
            step = self.exit_at - self.clock.now if timeout is None else timeout
            self.clock.now = min(self.exit_at, self.clock.now + step)
        if self.poll() is None:
            raise subprocess.TimeoutExpired("fake", timeout or 0)
        return self.code


@dataclass
class FakeFreezer:
    """Records freeze/thaw into ``events``; notes what the scripts had done at that moment."""

    events: list[str]
    ran_file: Path
    freeze_code: int = 0
    thaw_code: int = 0
    real = False
    seen: dict[str, str] = field(default_factory=dict)

    def freeze(self) -> FreezeResult:
        self.events.append("freeze")
        self.seen["freeze"] = self._ran()
        return FreezeResult(self.freeze_code, "fake freeze", ["/"])

    def thaw(self) -> ThawResult:
        self.events.append("thaw")
        self.seen["thaw"] = self._ran()
        return ThawResult(self.thaw_code, "fake thaw", {"/": 0.25})

    def _ran(self) -> str:
        return self.ran_file.read_text() if self.ran_file.exists() else ""


@dataclass
class FakeSnapshotter:
    events: list[str]
    code: int = 0
    real = False

    def snapshot(self) -> SnapshotResult:
        self.events.append("snapshot")
        return SnapshotResult(self.code, self.code == 0, "fake", 0.5, "fake snapshot")


PROMPT_PHASES = ["precheck", "pre", "freeze", "snapshot", "thaw", "post"]
"""The timeline of a cycle without the extension's waits around the freeze."""

# Script states: ok (exit 0), fail (exit 1), timeout (never ends), missing, mode (750),
# owner (a uid without passwd entry).
BODY = {"ok": 0, "fail": 1}


@dataclass
class Rig:
    root: Path
    events: list[str]
    freezer: FakeFreezer
    snapshotter: FakeSnapshotter
    clock: FakeClock
    pre_path: Path
    post_path: Path

    def spawn(self, argv: Sequence[str]) -> Any:
        name = Path(argv[1]).name
        self.events.append(f"run:{name.split('.')[0].split('-')[0]}")
        if "hang" in name:
            return FakeProcess(self.clock)
        return spawn_script(argv)

    def run(
        self,
        profile: Profile = EXTENSION,
        pacing: Pacing = PROMPT,
        **kw: Any,
    ) -> CycleResult:
        return run_cycle(
            self.root,
            freezer=self.freezer,
            snapshotter=self.snapshotter,
            profile=profile,
            clock=self.clock,
            spawn=self.spawn,
            pacing=pacing,
            observer=lambda e: self.events.append(f"ev:{e}"),
            **kw,
        )

    @property
    def calls(self) -> list[str]:
        """Freeze/snapshot/thaw calls and script starts, in order (observer events left out)."""
        return [e for e in self.events if not e.startswith("ev:")]

    @property
    def ran(self) -> list[str]:
        return [e[4:] for e in self.events if e.startswith("run:")]


def make_rig(
    tmp_path: Path,
    pre: str = "ok",
    post: str = "ok",
    *,
    C: Any = True,
    F: Any = True,
    freeze_code: int = 0,
    snapshot_code: int = 0,
    thaw_code: int = 0,
    json_mode: int = 0o600,
    **json_extra: Any,
) -> Rig:
    root = tmp_path / "vm"
    (root / "etc/azure").mkdir(parents=True)
    (root / "s").mkdir()
    ran = root / "ran"
    paths = {}
    for which, state in (("pre", pre), ("post", post)):
        name = f"{which}-hang.sh" if state == "timeout" else f"{which}.sh"
        path = root / "s" / name
        paths[which] = path
        if state == "missing":
            continue
        path.write_text(f'echo {which} >> "{ran}"\nexit {BODY.get(state, 0)}\n')
        path.chmod(0o750 if state == "mode" else 0o700)
        if state == "owner":
            os.chown(path, NO_PASSWD_UID, 0)
    cfg: dict[str, Any] = {
        "pluginName": "ScriptRunner",
        "preScriptLocation": f"/s/{paths['pre'].name}",
        "postScriptLocation": f"/s/{paths['post'].name}",
        "preScriptParams": [],
        "postScriptParams": [],
        "timeoutInSeconds": 2,
        "ScriptsExecutionPollTimeSeconds": 1,
        "continueBackupOnFailure": C,
        "fsFreezeEnabled": F,
    }
    cfg.update(json_extra)
    json_path = root / "etc/azure/VMSnapshotScriptPluginConfig.json"
    json_path.write_text(json.dumps(cfg))
    json_path.chmod(json_mode)
    events: list[str] = []
    return Rig(
        root=root,
        events=events,
        freezer=FakeFreezer(events, ran, freeze_code, thaw_code),
        snapshotter=FakeSnapshotter(events, snapshot_code),
        clock=FakeClock(),
        pre_path=paths["pre"],
        post_path=paths["post"],
    )


def pre_msg(code: int) -> str:
    return f"PreScript failed for the plugin ScriptRunner StatusCode.{NAME[code]},"


def post_msg(code: int) -> str:
    return f"PostScript failed for the plugin ScriptRunner StatusCode.{NAME[code]},"


def outcome(status: int, health: int, snapshot: bool, froze: bool) -> str:
    """A compact 'status/health/snapshot/freeze' string for the conformance table."""
    return (
        f"status {status}, health {health}, "
        f"{'snapshot' if snapshot else 'no snapshot'}{' (frozen)' if froze else ''}"
    )


def precheck_msg(code: int) -> str:
    return f"Plugin Host Precheck Failed StatusCode.{NAME[code]},"


# --------------------------------------------------------------------------------------
# The C x F x pre x post matrix (table rows 6-11 of section 6)
# --------------------------------------------------------------------------------------

PRE_CODE = {"ok": 0, "fail": codes.PRE_FAILED, "timeout": codes.PRE_TIMEOUT}


def expected_row(pre: str, post: str, c: bool, f: bool) -> tuple[int, int, bool, str]:
    """(status, health, snapshot taken, message) straight from the section 6 table."""
    pre_code = PRE_CODE[pre]
    post_code = 0 if post == "ok" else codes.POST_FAILED
    if pre_code:
        if c and f:  # "pre fails/times out, C=true, F=true": status 1, health = pre code
            return codes.SUCCESS, pre_code, True, ""
        # "pre fails/times out, C=false (any F)" and "F=false (any C)": no snapshot
        return pre_code, pre_code, False, pre_msg(pre_code)
    if post_code:
        if c and f:  # "pre OK, post fails, C=true, F=true": status 1
            return codes.SUCCESS, post_code, True, ""
        # "pre OK, post fails, C=false or F=false": error although the snapshot exists
        return post_code, post_code, True, post_msg(post_code)
    # "pre OK, snapshot OK, post OK": 0, also when F=false
    return codes.SUCCESS_APP_CONSISTENT, 0, True, ""


MATRIX = [
    (pre, post, c, f)
    for pre in ("ok", "fail", "timeout")
    for post in ("ok", "fail")
    for c in (True, False)
    for f in (True, False)
]


@pytest.mark.parametrize(
    ("pre", "post", "c", "f"),
    MATRIX,
    ids=[f"pre_{p}-post_{q}-C{int(c)}-F{int(f)}" for p, q, c, f in MATRIX],
)
def test_outcome_matrix(
    tmp_path: Path, record_property: Any, pre: str, post: str, c: bool, f: bool
) -> None:
    """Sec. 6 rows 'pre OK ... post OK', 'pre fails/times out' (C true/false, F true/false)
    and 'pre OK, post fails' (C/F): status, health code, which scripts ran, whether and in
    which order freeze/snapshot/thaw were called, and the error message format. Sec. 5:
    post always runs after a clean pre-check, even when pre failed and nothing was taken."""
    rig = make_rig(tmp_path, pre, post, C=c, F=f)
    result = rig.run()
    status, health, snapshot, message = expected_row(pre, post, c, f)
    record_property("expected", outcome(status, health, snapshot, f and snapshot))
    record_property(
        "got", outcome(result.status, result.health_code, result.snapshot_taken, result.froze)
    )
    assert (result.status, result.health_code) == (status, health)
    assert rig.ran == ["pre", "post"]
    body = ["freeze", "snapshot", "thaw"] if f else ["snapshot"]
    assert rig.calls == ["run:pre", *(body if snapshot else []), "run:post"]
    assert result.snapshot_taken is snapshot
    assert result.froze is (snapshot and f)
    if message:
        assert result.message == message
    if pre == "timeout":
        assert result.pre is not None and result.pre.left_running == [NO_SUCH_PID]


# --------------------------------------------------------------------------------------
# Pre-check rows
# --------------------------------------------------------------------------------------


def test_json_absent_is_silent_fs_consistent(tmp_path: Path) -> None:
    """Sec. 6 row 'JSON absent (316) — default VM': no scripts, snapshot and freeze, status
    1, nothing reported — under the documented profile too (316 is the docs' normal state)."""
    for profile in (EXTENSION, DOCUMENTED):
        rig = make_rig(tmp_path / profile.name)
        (rig.root / "etc/azure/VMSnapshotScriptPluginConfig.json").unlink()
        result = rig.run(profile)
        assert (result.status, result.health_code) == (codes.SUCCESS, 0)
        assert rig.calls == ["freeze", "snapshot", "thaw"]
        assert result.precheck.code == codes.CONFIG_NOT_FOUND
        assert result.consistency == "filesystem"


HOST_OK = (
    "[pre_post]\ntimeoutInSeconds: 1800\nnumberOfPlugins: 1\npluginName0: ScriptRunner\n"
    "pluginPath0: /etc/azure\npluginConfigPath0: /etc/azure/VMSnapshotScriptPluginConfig.json\n"
)


def _host_missing(rig: Rig) -> dict[str, Any]:
    return {"shipped_host_file": False}


def _host_664(rig: Rig) -> dict[str, Any]:
    host = rig.root / "etc/azure/VMSnapshotPluginHost.conf"
    host.write_text(HOST_OK)
    host.chmod(0o664)
    return {}


def _host_not_root(rig: Rig) -> dict[str, Any]:
    host = rig.root / "etc/azure/VMSnapshotPluginHost.conf"
    host.write_text(HOST_OK)
    host.chmod(0o644)
    os.chown(host, NO_PASSWD_UID, 0)
    return {}


def _host_unparsable(rig: Rig) -> dict[str, Any]:
    host = rig.root / "etc/azure/VMSnapshotPluginHost.conf"
    host.write_text(HOST_OK.replace("numberOfPlugins: 1", "numberOfPlugins: one"))
    host.chmod(0o644)
    return {}


def _json_malformed(rig: Rig) -> dict[str, Any]:
    (rig.root / "etc/azure/VMSnapshotScriptPluginConfig.json").write_text("{oops")
    return {}


def _json_null_location(rig: Rig) -> dict[str, Any]:
    path = rig.root / "etc/azure/VMSnapshotScriptPluginConfig.json"
    cfg = json.loads(path.read_text())
    cfg.update(preScriptLocation=None, continueBackupOnFailure=False, fsFreezeEnabled=False)
    path.write_text(json.dumps(cfg))
    return {}


LOGGED_ONLY = [
    ("313-host-missing", _host_missing, codes.HOST_NOT_FOUND),
    ("314-host-664", _host_664, codes.HOST_PERMISSION),
    ("314-host-owner", _host_not_root, codes.HOST_PERMISSION),
    ("304-host-unparsable", _host_unparsable, codes.HOST_PARSING),
    ("304-null-location-C0-F0", _json_null_location, codes.HOST_PARSING),
    ("305-json-malformed", _json_malformed, codes.CONFIG_PARSING),
]


@pytest.mark.parametrize(
    ("setup", "code"), [c[1:] for c in LOGGED_ONLY], ids=[c[0] for c in LOGGED_ONLY]
)
def test_logged_only_codes(tmp_path: Path, setup: Any, code: int) -> None:
    """Sec. 6 row 'Host file missing/perm/owner (313/314) or unparsable (304); JSON
    malformed (305)': no scripts, snapshot and freeze (F forced True), status 1, nothing
    reported (sec. 10 'logged only'). Under the documented profile the code is reported,
    status still 1."""
    for profile, health in ((EXTENSION, 0), (DOCUMENTED, code)):
        rig = make_rig(tmp_path / profile.name)
        kw = setup(rig)
        result = rig.run(profile, **kw)
        assert result.precheck.code == code
        assert (result.status, result.health_code) == (codes.SUCCESS, health)
        assert rig.calls == ["freeze", "snapshot", "thaw"]
        assert rig.ran == []


def test_305_partial_read_keeps_freeze_off(tmp_path: Path) -> None:
    """Sec. 6 row 305 '(F forced True, except partial-read case)': fsFreezeEnabled false read
    before a bad ScriptsExecutionPollTimeSeconds is honoured: snapshot without a freeze."""
    rig = make_rig(tmp_path, F=False, C=False, ScriptsExecutionPollTimeSeconds="x")
    result = rig.run()
    assert result.precheck.code == codes.CONFIG_PARSING
    assert (result.status, result.health_code) == (codes.SUCCESS, 0)
    assert rig.calls == ["snapshot"]
    assert result.consistency == "crash"


@pytest.mark.parametrize("profile", [EXTENSION, DOCUMENTED], ids=lambda p: p.name)
def test_json_permission_317_is_reported(tmp_path: Path, profile: Profile) -> None:
    """Sec. 6 row 'JSON perms/owner wrong (317)': no scripts, snapshot with freeze, status 1,
    health 317 (yellow) — reported, unlike 304/305/313/314/316."""
    rig = make_rig(tmp_path, json_mode=0o640)
    result = rig.run(profile)
    assert (result.status, result.health_code) == (codes.SUCCESS, codes.CONFIG_PERMISSION)
    assert rig.calls == ["freeze", "snapshot", "thaw"]


VALIDATION = [
    ("pre-missing", {"pre": "missing"}, codes.PRE_NOT_FOUND),
    ("pre-mode", {"pre": "mode"}, codes.PRE_PERMISSION),
    ("pre-owner", {"pre": "owner"}, codes.PRE_PERMISSION),
    ("post-missing", {"post": "missing"}, codes.POST_NOT_FOUND),
    ("post-mode", {"post": "mode"}, codes.POST_PERMISSION),
    ("post-owner", {"post": "owner"}, codes.POST_PERMISSION),
]
VALIDATION_CASES = [(v, c, f) for v in VALIDATION for c in (True, False) for f in (True, False)]


@pytest.mark.parametrize(
    ("case", "c", "f"),
    VALIDATION_CASES,
    ids=[f"{v[0]}-C{int(c)}-F{int(f)}" for v, c, f in VALIDATION_CASES],
)
def test_script_validation_rows(
    tmp_path: Path, record_property: Any, case: tuple[str, dict[str, str], int], c: bool, f: bool
) -> None:
    """Sec. 6 rows 'Script missing / bad perms / not root (302/303/306/307)': neither pre
    nor post runs. C=true: snapshot, freeze iff F, status 1 even when F=false (really only
    crash-consistent), health = the code. C=false: no snapshot, status = the code, message
    'Plugin Host Precheck Failed StatusCode.<Name>,'."""
    _, states, code = case
    rig = make_rig(tmp_path, C=c, F=f, **states)
    result = rig.run()
    status = codes.SUCCESS if c else code
    record_property("expected", outcome(status, code, c, c and f) + ", no script")
    record_property(
        "got",
        outcome(result.status, result.health_code, result.snapshot_taken, result.froze)
        + (", no script" if not rig.ran else f", ran {rig.ran}"),
    )
    assert rig.ran == []  # post does not run when the pre-check failed
    assert result.health_code == code
    if c:
        assert result.status == codes.SUCCESS
        assert rig.calls == (["freeze", "snapshot", "thaw"] if f else ["snapshot"])
        assert result.consistency == ("filesystem" if f else "crash")
    else:
        assert result.status == code
        assert result.message == precheck_msg(code)
        assert rig.calls == []


# --------------------------------------------------------------------------------------
# Errata E8: several pluginConfigPath<i>; the last loading turn decides
# --------------------------------------------------------------------------------------


def plugins_rig(
    tmp_path: Path, plugins: list[tuple[str, bool, bool]], count: int | None = None
) -> Rig:
    """A rig whose host file lists ``plugins`` as (state, C, F): plugin i's JSON is
    /etc/azure/p<i>.json (state missing: absent; json-mode: 640) and its scripts /s/p<i>pre.sh
    and /s/p<i>post.sh (state pre-missing: no pre-script)."""
    rig = make_rig(tmp_path)
    azure = rig.root / "etc/azure"
    lines = ["[pre_post]", f"numberOfPlugins: {len(plugins) if count is None else count}"]
    for i, (state, c, f) in enumerate(plugins):
        lines += [f"pluginName{i}: ScriptRunner", f"pluginPath{i}: /etc/azure"]
        lines.append(f"pluginConfigPath{i}: /etc/azure/p{i}.json")
        for which in ("pre", "post"):
            if not (state == "pre-missing" and which == "pre"):
                script = rig.root / f"s/p{i}{which}.sh"
                script.write_text("exit 0\n")
                script.chmod(0o700)
        if state == "missing":
            continue
        cfg = {"preScriptLocation": f"/s/p{i}pre.sh", "postScriptLocation": f"/s/p{i}post.sh"}
        cfg.update(continueBackupOnFailure=c, fsFreezeEnabled=f)
        (azure / f"p{i}.json").write_text(json.dumps(cfg))
        (azure / f"p{i}.json").chmod(0o640 if state == "json-mode" else 0o600)
    (azure / "VMSnapshotPluginHost.conf").write_text("\n".join(lines) + "\n")
    (azure / "VMSnapshotPluginHost.conf").chmod(0o644)
    return rig


E8_CYCLES = [
    # (id, plugins as (state, C, F), numberOfPlugins, (status, health, snapshot, froze))
    (
        "first-valid-last-pre-missing-C0",
        [("ok", True, True), ("pre-missing", False, True)],
        None,
        (codes.PRE_NOT_FOUND, codes.PRE_NOT_FOUND, False, False),
    ),
    (
        "first-valid-C0-last-pre-missing-C1",
        [("ok", False, True), ("pre-missing", True, True)],
        None,
        (codes.SUCCESS, codes.PRE_NOT_FOUND, True, True),
    ),
    (
        "first-missing-last-valid",
        [("missing", True, True), ("ok", True, True)],
        None,
        (codes.SUCCESS, 0, True, True),
    ),
    (
        "first-valid-F0-last-missing",
        [("ok", True, False), ("missing", True, True)],
        None,
        (codes.SUCCESS, 0, True, False),
    ),
    (
        "first-valid-last-json-mode",
        [("ok", True, True), ("json-mode", True, True)],
        None,
        (codes.SUCCESS, codes.CONFIG_PERMISSION, True, True),
    ),
    (
        "first-valid-C0-count-beyond-listed",
        [("ok", False, False)],
        2,
        (codes.HOST_PARSING, codes.HOST_PARSING, False, False),
    ),
]


@pytest.mark.parametrize(
    ("plugins", "count", "expected"),
    [pytest.param(p, n, e, id=case) for case, p, n, e in E8_CYCLES],
)
def test_several_plugins_failed_precheck_rows(
    tmp_path: Path,
    record_property: Any,
    plugins: list[tuple[str, bool, bool]],
    count: int | None,
    expected: tuple[int, int, bool, bool],
) -> None:
    """Errata E8 with the sec. 6 pre-check rows: when the last loading turn fails, no
    plugin's script runs (not even a valid earlier one's); its code, C and F (a later JSON
    that fails to load keeps the earlier plugin's F, and a missing pluginName<i> keeps its C
    too) give the status and health as for one plugin; a missing pluginConfigPath0 hides
    the later entries."""
    rig = plugins_rig(tmp_path, plugins, count)
    result = rig.run()
    record_property("expected", outcome(*expected) + ", no script")
    record_property(
        "got",
        outcome(result.status, result.health_code, result.snapshot_taken, result.froze)
        + (", no script" if not rig.ran else f", ran {rig.ran}"),
    )
    assert rig.ran == []
    got = (result.status, result.health_code, result.snapshot_taken, result.froze)
    assert got == expected
    if not codes.is_success(result.status):
        assert result.message == precheck_msg(result.status)


# --------------------------------------------------------------------------------------
# Host watchdog (310/311)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("c", [True, False, "false"], ids=["C1", "C0", "Cstr"])
@pytest.mark.parametrize("f", [True, False], ids=["F1", "F0"])
def test_host_watchdog_pre(tmp_path: Path, c: Any, f: bool) -> None:
    """Sec. 6 row 'host watchdog (310/311)': snapshot unless F=false, status 1 if F=true,
    error if F=false, whatever C is (continueBackup stays True; C is never combined, so a
    string C does not raise). The post-script still runs."""
    rig = make_rig(tmp_path, C=c, F=f, preScriptParams=5)
    result = rig.run()
    assert result.pre is not None and result.pre.watchdog
    assert rig.ran == ["post"]
    assert result.health_code == codes.HOST_PRE_TIMEOUT
    if f:
        assert result.status == codes.SUCCESS
        assert rig.calls == ["freeze", "snapshot", "thaw", "run:post"]
    else:
        assert result.status == codes.HOST_PRE_TIMEOUT
        assert result.message == pre_msg(codes.HOST_PRE_TIMEOUT)
        assert rig.calls == ["run:post"]


@pytest.mark.parametrize("f", [True, False], ids=["F1", "F0"])
def test_host_watchdog_post(tmp_path: Path, f: bool) -> None:
    """Sec. 6 row 'host watchdog (310/311)' for post: the snapshot is already taken; status
    1 with F=true, error 311 with F=false."""
    rig = make_rig(tmp_path, C=False, F=f, postScriptParams=None)
    result = rig.run()
    assert result.health_code == codes.HOST_POST_TIMEOUT
    assert result.snapshot_taken
    assert result.status == (codes.SUCCESS if f else codes.HOST_POST_TIMEOUT)


# --------------------------------------------------------------------------------------
# Freeze / snapshot / thaw failures
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", [codes.FREEZE_FAILED, codes.FREEZE_TIMEOUT, codes.FREEZE_OPEN_MOUNT]
)
def test_freeze_failure_row(tmp_path: Path, code: int) -> None:
    """Sec. 6 row 'freeze/snapshot failure': pre and post both still run, no snapshot,
    status = health = the freeze code; Python does not call thaw after a failed freeze
    (sec. 7.4: the helper's own timer is the thaw guarantee)."""
    rig = make_rig(tmp_path, freeze_code=code)
    result = rig.run()
    assert (result.status, result.health_code) == (code, code)
    assert rig.calls == ["run:pre", "freeze", "run:post"]
    assert not result.snapshot_taken and result.consistency == "none"


def test_snapshot_failure_row(tmp_path: Path) -> None:
    """Sec. 6 row 'freeze/snapshot failure' (snapshot error 2): thaw still follows the
    snapshot call, post still runs, status = health = 2."""
    rig = make_rig(tmp_path, snapshot_code=codes.ERROR)
    result = rig.run()
    assert (result.status, result.health_code) == (codes.ERROR, codes.ERROR)
    assert rig.calls == ["run:pre", "freeze", "snapshot", "thaw", "run:post"]


def test_thaw_failure_is_inconsistent_snapshot(tmp_path: Path) -> None:
    """Sec. 7.3: a failed thaw (helper already gone / exit != 0) -> 'Snapshots are
    inconsistent', run result 2, although the snapshot call succeeded."""
    rig = make_rig(tmp_path, thaw_code=codes.ERROR)
    result = rig.run()
    assert (result.status, result.health_code) == (codes.ERROR, codes.ERROR)
    assert result.snapshot_taken and result.consistency == "none"


@pytest.mark.parametrize(
    ("states", "c", "freeze", "snap"),
    [
        ({"pre": "fail"}, True, codes.FREEZE_FAILED, 0),
        ({"pre": "timeout"}, True, codes.FREEZE_TIMEOUT, 0),
        ({"pre": "mode"}, True, codes.FREEZE_OPEN_MOUNT, 0),
        ({"post": "fail"}, True, 0, codes.ERROR),
        ({"post": "fail"}, False, 0, codes.ERROR),
    ],
    ids=["pre-fail+121", "pre-timeout+122", "precheck-306+123", "post-fail+snap2", "C0+snap2"],
)
def test_freeze_snapshot_code_takes_precedence(
    tmp_path: Path, record_property: Any, states: dict[str, str], c: bool, freeze: int, snap: int
) -> None:
    """Sec. 6 row 'freeze/snapshot failure': the freeze/snapshot code is the status *and*
    the health code (it takes precedence over script codes: handle.py writes the script
    codes only after the snapshot step, and the first writer wins)."""
    rig = make_rig(tmp_path, C=c, freeze_code=freeze, snapshot_code=snap, **states)
    result = rig.run()
    expected = freeze or snap
    record_property("expected", f"status {expected}, health {expected}")
    record_property("got", f"status {result.status}, health {result.health_code}")
    assert (result.status, result.health_code) == (expected, expected)


# --------------------------------------------------------------------------------------
# Details below the table, and section 5 ordering
# --------------------------------------------------------------------------------------


def test_first_writer_wins_pre_before_post(tmp_path: Path) -> None:
    """Sec. 6 details: SetExtErrorCode is first-writer-wins; pre failed (300) then post
    failed (301) with C=true, F=true -> status 1, health 300."""
    rig = make_rig(tmp_path, "fail", "fail")
    result = rig.run()
    assert (result.status, result.health_code) == (codes.SUCCESS, codes.PRE_FAILED)
    assert [f["code"] for f in result.findings] == [codes.PRE_FAILED, codes.POST_FAILED]


def test_post_runs_after_failed_pre_without_snapshot(tmp_path: Path) -> None:
    """Sec. 5: post_script runs ALWAYS after a clean pre-check, even if pre failed and no
    snapshot was taken (PR #430); the error is the pre code."""
    rig = make_rig(tmp_path, "fail", "ok", C=False)
    result = rig.run()
    assert rig.calls == ["run:pre", "run:post"]
    assert (rig.root / "ran").read_text() == "pre\npost\n"
    assert result.status == codes.PRE_FAILED


def test_freeze_after_pre_thaw_before_post(tmp_path: Path) -> None:
    """Sec. 5 notes: the pre-script has finished before the freeze and the post-script
    starts only after the thaw: scripts never run while file systems are frozen."""
    rig = make_rig(tmp_path)
    result = rig.run()
    assert result.status == codes.SUCCESS_APP_CONSISTENT
    assert rig.freezer.seen == {"freeze": "pre\n", "thaw": "pre\n"}
    assert (rig.root / "ran").read_text() == "pre\npost\n"


def test_observer_events_order(tmp_path: Path) -> None:
    """Sec. 5 ordering as observer events: precheck, pre, freeze, frozen, snapshot, thaw,
    post — interleaved with the real calls."""
    rig = make_rig(tmp_path)
    rig.run()
    assert rig.events == [
        "ev:precheck_end",
        "ev:pre_start",
        "run:pre",
        "ev:pre_end",
        "ev:freeze_start",
        "ev:freeze_call",
        "freeze",
        "ev:frozen",
        "ev:snapshot_start",
        "snapshot",
        "ev:snapshot_end",
        "thaw",
        "ev:thawed",
        "ev:post_start",
        "run:post",
        "ev:post_end",
    ]


def test_observer_events_without_freeze(tmp_path: Path) -> None:
    """Sec. 7.4: 'Freeze only if F is true' — with F=false no freeze/thaw events."""
    rig = make_rig(tmp_path, F=False)
    rig.run()
    assert [e for e in rig.events if e.startswith("ev:")] == [
        "ev:precheck_end",
        "ev:pre_start",
        "ev:pre_end",
        "ev:snapshot_start",
        "ev:snapshot_end",
        "ev:post_start",
        "ev:post_end",
    ]


def test_status_zero_also_when_freeze_disabled(tmp_path: Path) -> None:
    """Sec. 6 row 'pre OK, snapshot OK, post OK': status 0 (app-consistent) also when F=false
    — no freeze happened."""
    rig = make_rig(tmp_path, F=False)
    result = rig.run()
    assert (result.status, result.health_code, result.froze) == (0, 0, False)
    assert result.consistency == "application"


def test_script_vanishing_after_precheck_is_a_script_failure(tmp_path: Path) -> None:
    """Sec. 3 last bullet: scripts are validated once; one removed between validation and
    execution makes sh fail -> 300 (status 1 with C=true, F=true)."""
    rig = make_rig(tmp_path)
    pc = precheck(rig.root)
    assert pc.code == 0
    rig.pre_path.unlink()
    result = rig.run(pre=pc)
    assert (result.status, result.health_code) == (codes.SUCCESS, codes.PRE_FAILED)


# --------------------------------------------------------------------------------------
# Odd values of C and F (sec. 2.2 table)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("c", ["false", None, 1.5, "true"], ids=repr)
def test_non_bool_continue_is_truthy_when_nothing_fails(tmp_path: Path, c: Any) -> None:
    """Sec. 2.2: continueBackupOnFailure "false" is truthy; with no script failing nothing is
    combined with `&`, so the run is the normal app-consistent one."""
    rig = make_rig(tmp_path, C=c)
    assert rig.run().status == codes.SUCCESS_APP_CONSISTENT


def test_string_false_continue_with_precheck_failure_still_backs_up(tmp_path: Path) -> None:
    """Sec. 2.2: C = "false" is truthy: a 302 pre-check failure still takes the snapshot
    (status 1, health 302), as with C=true."""
    rig = make_rig(tmp_path, "missing", C="false")
    result = rig.run()
    assert (result.status, result.health_code) == (codes.SUCCESS, codes.PRE_NOT_FOUND)
    assert rig.calls == ["freeze", "snapshot", "thaw"]


@pytest.mark.parametrize("c", ["false", None, 1.5], ids=repr)
@pytest.mark.parametrize("pre", ["fail", "timeout"])
def test_non_bool_continue_with_failed_pre_aborts(tmp_path: Path, c: Any, pre: str) -> None:
    """Sec. 2.2: when a script fails, `True & "false"` raises TypeError in the main flow: the
    whole enable fails with generic error 2 and nothing after runs (no freeze, no snapshot,
    no post). Nothing was written before, so the health code is 2 too."""
    rig = make_rig(tmp_path, pre, C=c)
    result = rig.run()
    assert (result.status, result.health_code) == (codes.ERROR, codes.ERROR)
    assert rig.calls == ["run:pre"]
    assert result.post is None


def test_non_bool_continue_with_failed_post_aborts(tmp_path: Path) -> None:
    """Sec. 2.2: the same TypeError after a failed post-script: status 2 although the
    snapshot was already taken."""
    rig = make_rig(tmp_path, "ok", "fail", C="false")
    result = rig.run()
    assert (result.status, result.health_code) == (codes.ERROR, codes.ERROR)
    assert rig.calls == ["run:pre", "freeze", "snapshot", "thaw", "run:post"]


def test_continue_zero_behaves_as_false(tmp_path: Path) -> None:
    """Sec. 2.2: C = 0 is an int: `True & 0` works and is falsy -> like C=false (no
    snapshot after a failed pre, status 300)."""
    rig = make_rig(tmp_path, "fail", C=0)
    result = rig.run()
    assert result.status == codes.PRE_FAILED
    assert rig.calls == ["run:pre", "run:post"]


@pytest.mark.parametrize("f", [0, 0.0], ids=repr)
def test_freeze_zero_behaves_as_false(tmp_path: Path, f: Any) -> None:
    """Sec. 2.2: fsFreezeEnabled 0 behaves as false — no freeze, and `F == False` makes a
    failed pre stop the backup."""
    ok = make_rig(tmp_path / "ok", F=f)
    assert ok.run().status == codes.SUCCESS_APP_CONSISTENT
    assert ok.calls == ["run:pre", "snapshot", "run:post"]
    bad = make_rig(tmp_path / "bad", "fail", F=f)
    assert bad.run().status == codes.PRE_FAILED
    assert bad.calls == ["run:pre", "run:post"]


def test_freeze_string_false_is_truthy(tmp_path: Path) -> None:
    """Sec. 2.2: fsFreezeEnabled "false" is truthy: the freeze stays on, and `"false" ==
    False` is False, so a failed pre does not stop the backup (status 1)."""
    rig = make_rig(tmp_path, "fail", F="false")
    result = rig.run()
    assert result.status == codes.SUCCESS
    assert rig.calls == ["run:pre", "freeze", "snapshot", "thaw", "run:post"]


def test_freeze_null_is_falsy_but_not_false(tmp_path: Path) -> None:
    """Sec. 2.2 / 6: F = null -> no freeze (truthiness) but `None == False` is False, so a
    failed pre still lets the (unfrozen) snapshot happen: status 1."""
    rig = make_rig(tmp_path, "fail", F=None)
    result = rig.run()
    assert result.status == codes.SUCCESS
    assert rig.calls == ["run:pre", "snapshot", "run:post"]


# --------------------------------------------------------------------------------------
# workload.conf, zero plugins, pacing, defaults
# --------------------------------------------------------------------------------------


def test_workload_conf_takes_over(tmp_path: Path) -> None:
    """Sec. 1 step 2 / 11.1: workload.conf naming 'mysql' runs the enhanced flow: the JSON
    scripts are not used at all; the flow always freezes (11.4)."""
    rig = make_rig(tmp_path, F=False)
    (rig.root / "etc/azure/workload.conf").write_text("[workload]\nworkload_name = mysql\n")
    result = rig.run()
    assert rig.ran == []
    assert rig.calls == ["freeze", "snapshot", "thaw"]
    assert result.status == codes.SUCCESS
    assert result.findings[0]["name"] == "WorkloadConfTakesOver"


def test_workload_flow_snapshot_failure(tmp_path: Path) -> None:
    """Sec. 11.2: the workload flow also goes through freeze+snapshot+thaw; a snapshot
    error is the run's error."""
    rig = make_rig(tmp_path, snapshot_code=codes.ERROR)
    (rig.root / "etc/azure/workload.conf").write_text("[workload]\nworkload_name = oracle\n")
    assert rig.run().status == codes.ERROR


def test_workload_name_case_sensitive(tmp_path: Path) -> None:
    """Sec. 11.1: 'MySQL' is not a supported workload name: the classic flow runs."""
    rig = make_rig(tmp_path)
    (rig.root / "etc/azure/workload.conf").write_text("[workload]\nworkload_name = MySQL\n")
    assert rig.run().status == codes.SUCCESS_APP_CONSISTENT
    assert rig.ran == ["pre", "post"]


def test_zero_plugins_reports_app_consistent(tmp_path: Path) -> None:
    """Sec. 6 details: the status-0 upgrade needs pre-check 0 and no failing script; with
    numberOfPlugins 0 no script runs, yet handle.py reports status 0."""
    rig = make_rig(tmp_path)
    host = rig.root / "etc/azure/VMSnapshotPluginHost.conf"
    host.write_text("[pre_post]\nnumberOfPlugins: 0\n")
    host.chmod(0o644)
    result = rig.run()
    assert result.status == codes.SUCCESS_APP_CONSISTENT
    assert rig.calls == ["freeze", "snapshot", "thaw"]
    assert "no script" in result.message


def test_faithful_phases_last_whole_poll_periods(tmp_path: Path) -> None:
    """Sec. 4.4: the host's first check comes after one full P, so a phase lasts at least P
    and ends on a multiple of P (a pre ending at 0 s and a post ending at 4.5 s with P=3 take
    3 s and 6 s)."""
    rig = make_rig(tmp_path, ScriptsExecutionPollTimeSeconds=3, timeoutInSeconds=30)
    ends = iter([0.0, 4.5])

    def spawn(argv: Sequence[str]) -> FakeProcess:
        return FakeProcess(rig.clock, rig.clock.now + next(ends), 0)

    result = run_cycle(
        rig.root,
        freezer=rig.freezer,
        snapshotter=rig.snapshotter,
        clock=rig.clock,
        spawn=spawn,
        pacing=FAITHFUL,
    )
    phases = {p.phase: p.end_s - p.start_s for p in result.timeline}
    assert phases["pre"] == 3.0 and phases["post"] == 6.0
    assert result.status == codes.SUCCESS_APP_CONSISTENT


def test_no_op_freezer_and_snapshotter_say_so(tmp_path: Path) -> None:
    """Interfaces: without a stand-in VM the cycle runs with no-op freeze/snapshot and the
    JSON record says they were not real."""
    rig = make_rig(tmp_path)
    result = run_cycle(rig.root, clock=rig.clock, pacing=PROMPT)
    record = result.to_dict()
    assert record["status"] == codes.SUCCESS_APP_CONSISTENT
    assert record["freeze"]["real"] is False and record["snapshot"]["real"] is False
    assert record["scripts"]["pre"]["ran"] is True
    assert [p["phase"] for p in record["timeline"]] == PROMPT_PHASES


def test_findings_describe_stalled_and_abandoned_scripts(tmp_path: Path) -> None:
    """Sec. 4.4: a timed-out pre-script left running is named (with its pid) in the finding
    and the JSON record says it was not waited on."""
    rig = make_rig(tmp_path, "timeout")
    result = rig.run()
    finding = result.findings[0]
    assert finding["code"] == codes.PRE_TIMEOUT
    assert str(NO_SUCH_PID) in str(finding["message"])
    assert result.to_dict()["scripts"]["pre"]["left_running"] == [NO_SUCH_PID]


@pytest.mark.parametrize("code", [85, 173, 76])
def test_other_snapshot_codes_pass_through(tmp_path: Path, code: int) -> None:
    """Sec. 10 'other codes a harness may meet' (85 snapshot limit, 173 rate exceeded, 76
    network): a snapshot error outside the catalogue is still the run's status and health."""
    rig = make_rig(tmp_path, snapshot_code=code)
    result = rig.run()
    assert (result.status, result.health_code) == (code, code)
    assert not codes.is_success(result.status)
    assert codes.lookup(code).number == code


def test_success_statuses() -> None:
    """Sec. 9: status 0 (application-consistent) and 1 (file-system consistent) are the two
    successes; anything else is a failure."""
    assert [codes.is_success(n) for n in (0, 1, 2, 300, 4)] == [True, True, False, False, False]


class StalledProcess(FakeProcess):
    """A never-ending script whose stdout pipe is full and unread (sec. 4.1)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        try:
            while True:
                os.write(write_fd, b"x" * 4096)
        except BlockingIOError:
            pass
        self.write_fd = write_fd
        self.stdout = open(read_fd, "rb")  # noqa: SIM115 - closed by the runner


def test_stalled_pre_script_is_reported(tmp_path: Path) -> None:
    """Sec. 4.1: a script blocked on a full, never-read stdout pipe hits the timeout; the
    finding says it was blocked writing output, and its first 64 KiB are in the report."""
    rig = make_rig(tmp_path, "timeout")
    procs: list[StalledProcess] = []

    def spawn(argv: Sequence[str]) -> Any:
        if "hang" in argv[1]:
            procs.append(StalledProcess(rig.clock))
            return procs[-1]
        return spawn_script(argv)

    result = run_cycle(rig.root, clock=rig.clock, spawn=spawn, pacing=PROMPT)
    os.close(procs[0].write_fd)
    assert result.pre is not None and result.pre.output_stalled
    assert result.pre.stdout.total >= 4096
    assert (result.status, result.health_code) == (codes.SUCCESS, codes.PRE_TIMEOUT)
    assert "blocked writing more output than a pipe holds" in str(result.findings[0]["message"])


# --------------------------------------------------------------------------------------
# Errata E2, E3 (azure-framework.md, errata at the top)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("c", "continues"), [(2, False), (-2, False), (3, True), (-1, True)])
def test_continue_is_combined_as_true_and_value(tmp_path: Path, c: int, continues: bool) -> None:
    """Errata E2: the plugin host computes `True & continueBackupOnFailure`: an even integer
    gives 0 and stops the backup after a failed pre-script like false (status 300, no
    snapshot); an odd one continues like true (status 1, health 300)."""
    rig = make_rig(tmp_path, "fail", C=c)
    result = rig.run()
    if continues:
        assert (result.status, result.health_code) == (codes.SUCCESS, codes.PRE_FAILED)
        assert rig.calls == ["run:pre", "freeze", "snapshot", "thaw", "run:post"]
    else:
        assert (result.status, result.health_code) == (codes.PRE_FAILED, codes.PRE_FAILED)
        assert rig.calls == ["run:pre", "run:post"]


def test_even_continue_after_a_failed_post_is_an_error_with_the_snapshot_taken(
    tmp_path: Path,
) -> None:
    """Errata E2 with the post-script: `True & 2` is 0, so a failed post gives status 301
    although the snapshot exists (the row 'pre OK, post fails, C=false')."""
    rig = make_rig(tmp_path, "ok", "fail", C=2)
    result = rig.run()
    assert (result.status, result.health_code) == (codes.POST_FAILED, codes.POST_FAILED)
    assert result.snapshot_taken


@pytest.mark.parametrize(
    ("pre", "post", "script_code"),
    [
        ("fail", "ok", codes.PRE_FAILED),
        ("timeout", "ok", codes.PRE_TIMEOUT),
        ("ok", "fail", codes.POST_FAILED),
    ],
)
def test_failed_thaw_with_a_failed_script_keeps_the_script_code_as_health(
    tmp_path: Path, pre: str, post: str, script_code: int
) -> None:
    """Errata E3: a failed thaw ("snapshots are inconsistent", status 2) writes success as the
    health code, a no-op, so the failed script's code is the health code, not 2."""
    rig = make_rig(tmp_path, pre, post, thaw_code=codes.ERROR)
    result = rig.run()
    assert (result.status, result.health_code) == (codes.ERROR, script_code)


# --------------------------------------------------------------------------------------
# Errata E5: the extension's delays around the freeze (faithful pacing)
# --------------------------------------------------------------------------------------


def test_faithful_pacing_keeps_the_extensions_delays_around_the_freeze(tmp_path: Path) -> None:
    """Errata E5: the freeze thread sleeps 3 s before it starts the helper; the main thread
    notices "frozen" on its 2 s steps counted from the freeze's start (at 4 s); only then does
    the snapshot start. With P = 1 the pre-script phase ends on the host's first poll (1 s)."""
    rig = make_rig(tmp_path)
    times: dict[str, float] = {}

    class Timed(FakeFreezer):
        def freeze(self) -> FreezeResult:
            times["freeze"] = rig.clock.now
            return super().freeze()

    class TimedSnap(FakeSnapshotter):
        def snapshot(self) -> SnapshotResult:
            times["snapshot"] = rig.clock.now
            return super().snapshot()

    result = run_cycle(
        rig.root,
        freezer=Timed(rig.events, rig.freezer.ran_file),
        snapshotter=TimedSnap(rig.events),
        clock=rig.clock,
        spawn=lambda argv: FakeProcess(rig.clock, rig.clock.now, 0),
        pacing=FAITHFUL,
    )
    assert result.status == codes.SUCCESS_APP_CONSISTENT
    phases = {p.phase: (p.start_s, p.end_s) for p in result.timeline}
    pre_end = phases["pre"][1]
    assert pre_end == pytest.approx(1.0)
    assert phases["freeze-wait"] == pytest.approx((pre_end, pre_end + 3.0))
    assert times["freeze"] == pytest.approx(pre_end + 3.0)
    assert phases["frozen-poll"] == pytest.approx((pre_end + 3.0, pre_end + 4.0))
    assert times["snapshot"] == pytest.approx(pre_end + 4.0)


def test_prompt_pacing_has_no_waits_around_the_freeze(tmp_path: Path) -> None:
    result = make_rig(tmp_path).run(pacing=PROMPT)
    assert [p.phase for p in result.timeline] == PROMPT_PHASES


@pytest.mark.parametrize(("host_timeout", "poll", "waited"), [(60, 3, 66.0), (5000, 3, 1806.0)])
def test_host_watchdog_counts_with_the_host_files_timeout(
    tmp_path: Path, host_timeout: int, poll: int, waited: float
) -> None:
    """Errata E8: the plugin host's watchdog (310 after a plugin thread died without a report)
    gives up after int(T / P) + 2 polls with T the host file's own timeoutInSeconds (capped
    at 1800), not a fixed 1800."""
    rig = make_rig(tmp_path, preScriptParams=5, ScriptsExecutionPollTimeSeconds=poll)
    host = rig.root / "etc/azure/VMSnapshotPluginHost.conf"
    host.write_text(
        f"[pre_post]\ntimeoutInSeconds: {host_timeout}\nnumberOfPlugins: 1\n"
        "pluginName0: ScriptRunner\npluginPath0: /etc/azure\n"
        "pluginConfigPath0: /etc/azure/VMSnapshotScriptPluginConfig.json\n"
    )
    host.chmod(0o644)
    result = rig.run()
    assert result.pre is not None and result.pre.error_code == codes.HOST_PRE_TIMEOUT
    assert result.pre.duration_s == waited
