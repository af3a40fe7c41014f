"""Conformance of the VMware Tools (open-vm-tools vmbackup) engine, one test per fact.

Sources are vmware/open-vm-tools ``open-vm-tools/services/plugins/vmbackup/`` (scriptOps.c,
stateMachine.c, syncDriverOps.c, nullProvider.c), ``lib/procMgr/procMgrPosix.c``,
``libvmtools/vmtoolsConfig.c`` and GLib's gkeyfile.c. Each case builds a small machine root
in ``tmp_path`` with real tiny scripts that append their name and arguments to one log,
PROMPT pacing (or a fake clock for the 1-second ticks), and a freezer and snapshotter that
record their calls into the same event list.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap.framework import engines
from pytest_vmsnap.framework.engine import EVENTS, Given
from pytest_vmsnap.framework.interfaces import FreezeResult, SnapshotResult, ThawResult
from pytest_vmsnap.framework.outcome import APPLICATION, NO_SNAPSHOT, NOT_QUIESCED
from pytest_vmsnap.framework.scripts import FAITHFUL, PROMPT
from pytest_vmsnap.framework.vmware import codes, config, cycle, discovery, keyfile
from pytest_vmsnap.framework.vmware.engine import VMwareEngine, make

D = discovery.SCRIPTS_DIR


class Rec:
    """Freezer and snapshotter that record into one list."""

    real = False

    def __init__(
        self, log: list[str], freeze_code: int = 0, snap_ok: bool = True, thaw_code: int = 0
    ) -> None:
        self.log, self.freeze_code, self.snap_ok, self.thaw_code = (
            log,
            freeze_code,
            snap_ok,
            thaw_code,
        )

    def freeze(self) -> FreezeResult:
        self.log.append("FIFREEZE")
        return FreezeResult(self.freeze_code, "x" if self.freeze_code else "")

    def thaw(self) -> ThawResult:
        self.log.append("FITHAW")
        return ThawResult(self.thaw_code)

    def snapshot(self) -> SnapshotResult:
        self.log.append("SNAPSHOT")
        return SnapshotResult(0 if self.snap_ok else 1, self.snap_ok, "fake")


class FakeClock:
    """Time moves only when slept."""

    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)


def script(root: Path, location: str, body: str = "", mode: int = 0o755) -> Path:
    """A script that logs ``<name> <args>`` to ``root/log``, runs ``body``, exits 0."""
    path = root / location.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    name = os.path.basename(location)
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{root}/log"\n{body}\nexit 0\n')
    path.chmod(mode)
    return path


def conf(root: Path, text: str) -> None:
    path = root / config.TOOLS_CONF.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def logged(root: Path) -> list[str]:
    log = root / "log"
    return log.read_text().splitlines() if log.exists() else []


def run(root: Path, **kw: Any) -> tuple[Any, list[str], list[str]]:
    """One PROMPT cycle; (result, script log + freezer/snapshot calls in order, events)."""
    calls: list[str] = []
    rec = Rec(calls, **kw)
    events: list[str] = []

    class Tap:
        def __call__(self, event: str) -> None:
            events.append(event)
            if event in ("pre_end", "post_start", "post_end"):
                calls.extend(f"script:{line}" for line in logged(root)[len(_seen) :])
                _seen[:] = logged(root)

    _seen: list[str] = []
    engine = VMwareEngine(harness_bound_s=30, sync=lambda: calls.append("sync"))
    result = engine.run_cycle(root, freezer=rec, snapshotter=rec, pacing=PROMPT, observer=Tap())
    calls.extend(f"script:{line}" for line in logged(root)[len(_seen) :])
    return result, calls, events


def abc(root: Path, fail: str = "", verb: str = "freeze") -> None:
    for name in ("10-a", "20-b", "30-c"):
        body = f'[ "$1" = {verb} ] && exit 3' if name == fail else ""
        script(root, f"{D}/{name}", body)


# -- discovery and ordering --------------------------------------------------------------------


def test_freeze_runs_in_strcmp_order_thaw_in_reverse(tmp_path: Path, record_property: Any) -> None:
    """scriptOps.c VmBackup_NewScriptOp: freeze in ascending strcmp order, thaw walks back."""
    for name in ("b", "B", "a", "_x", "10"):
        script(tmp_path, f"{D}/{name}")
    result, _calls, _ = run(tmp_path)
    got = logged(tmp_path)
    expected = [f"{n} freeze" for n in ("10", "B", "_x", "a", "b")] + [
        f"{n} thaw" for n in ("b", "a", "_x", "B", "10")
    ]
    record_property("expected", expected)
    record_property("got", got)
    assert got == expected and result.status == APPLICATION


def test_every_regular_file_runs_hidden_and_backup_files_too(tmp_path: Path) -> None:
    """File_ListDirectory skips only . and ..: dotfiles, README and editor backups all run."""
    for name in ("50-db", ".hidden", "50-db~", "README"):
        script(tmp_path, f"{D}/{name}")
    run(tmp_path)
    assert [line.split()[0] for line in logged(tmp_path) if line.endswith("freeze")] == [
        ".hidden",
        "50-db",
        "50-db~",
        "README",
    ]


def test_subdirectories_and_dangling_links_are_skipped(tmp_path: Path) -> None:
    """File_IsFile follows links: a link to a file runs, a directory or dangling link does not."""
    target = script(tmp_path, "/opt/real")
    script(tmp_path, f"{D}/sub/inner")
    (tmp_path / D.lstrip("/") / "20-link").symlink_to(target)
    (tmp_path / D.lstrip("/") / "30-dangling").symlink_to(tmp_path / "nope")
    run(tmp_path)
    assert logged(tmp_path) == ["real freeze", "real thaw"]
    skipped = [f["name"] for f in make().precheck(tmp_path)]
    assert skipped.count("NotARegularFile") == 2


def test_legacy_pre_freeze_runs_first_and_post_thaw_last_with_arguments(tmp_path: Path) -> None:
    """Legacy scripts take slot 0: pre-freeze-script first with 'freeze', post-thaw-script last
    with 'thaw' (scriptOps.c: they get the same arguments as the others)."""
    script(tmp_path, discovery.LEGACY_FREEZE)
    script(tmp_path, discovery.LEGACY_THAW)
    script(tmp_path, f"{D}/50-x")
    result, _, _ = run(tmp_path)
    assert logged(tmp_path) == [
        "pre-freeze-script freeze",
        "50-x freeze",
        "50-x thaw",
        "post-thaw-script thaw",
    ]
    assert result.status == APPLICATION


def test_legacy_post_thaw_alone_runs_on_thaw_only(tmp_path: Path) -> None:
    """With only post-thaw-script the slot is skipped on freeze and used on thaw."""
    script(tmp_path, discovery.LEGACY_THAW)
    result, _, _ = run(tmp_path)
    assert logged(tmp_path) == ["post-thaw-script thaw"] and result.status == APPLICATION


def test_legacy_post_thaw_gets_freezefail(tmp_path: Path) -> None:
    """On freezeFail slot 0 is renamed to post-thaw-script, which runs last with 'freezeFail'."""
    script(tmp_path, discovery.LEGACY_FREEZE)
    script(tmp_path, discovery.LEGACY_THAW)
    script(tmp_path, f"{D}/50-x", '[ "$1" = freeze ] && exit 1')
    run(tmp_path)
    assert logged(tmp_path) == [
        "pre-freeze-script freeze",
        "50-x freeze",
        "post-thaw-script freezeFail",
    ]


def test_legacy_pre_freeze_without_post_thaw_fails_every_thaw(
    tmp_path: Path, record_property: Any
) -> None:
    """VmBackupRunNextScript's index -1 check: an empty legacy slot plus a directory script
    makes the thaw walk report an error although every script succeeded."""
    script(tmp_path, discovery.LEGACY_FREEZE)
    script(tmp_path, f"{D}/50-x")
    result, _calls, _ = run(tmp_path)
    record_property("expected", (NOT_QUIESCED, codes.SCRIPT_ERROR))
    record_property("got", (result.status, result.outcome))
    assert (result.status, result.outcome) == (NOT_QUIESCED, codes.SCRIPT_ERROR)
    assert result.snapshot_taken and not any(c.result.failed for c in result.calls)
    assert "post-thaw-script" in result.findings[-1]["action"]


def test_empty_legacy_slot_in_a_freezefail_walk_ends_vmtoolsd(tmp_path: Path) -> None:
    """VmBackupOnError has no case for SCRIPT_ERROR: an error from the freezeFail walk
    (the empty legacy slot again) reaches g_error, which ends vmtoolsd."""
    script(tmp_path, discovery.LEGACY_FREEZE)
    abc(tmp_path, fail="30-c")
    result, _, _ = run(tmp_path)
    assert logged(tmp_path)[-2:] == ["20-b freezeFail", "10-a freezeFail"]
    assert (result.status, result.outcome) == (NO_SNAPSHOT, codes.VMTOOLSD_ABORTED)


def test_no_scripts_at_all_still_quiesces(tmp_path: Path) -> None:
    """Without scripts the cycle is freeze, snapshot, thaw (state->scripts == NULL)."""
    result, calls, _ = run(tmp_path)
    assert calls == ["FIFREEZE", "SNAPSHOT", "FITHAW"] and result.status == APPLICATION
    assert [f["name"] for f in make().precheck(tmp_path)] == ["NoScripts"]


# -- calling convention ------------------------------------------------------------------------


def test_command_is_quoted_path_op_and_quoted_scriptarg_through_bash(tmp_path: Path) -> None:
    """VmBackupRunNextScript builds '"<path>" <op> "<scriptArg>"'; ProcMgr runs bash -c."""
    conf(tmp_path, "[vmbackup]\nscriptArg=nightly run\n")
    script(tmp_path, f"{D}/50-x", 'echo "n=$# 2=$2" >> "$(dirname "$0")/../../../log"')
    result, _, _ = run(tmp_path)
    call = result.calls[0]
    assert call.result.argv == ["/bin/bash", "-c", f'"{tmp_path}{D}/50-x" freeze "nightly run"']
    assert "n=2 2=nightly run" in logged(tmp_path)


def test_scriptarg_is_expanded_by_the_shell(tmp_path: Path) -> None:
    """scriptArg sits unescaped in double quotes: the shell expands $VAR in it."""
    conf(tmp_path, "[vmbackup]\nscriptArg=$PATH\n")
    script(tmp_path, f"{D}/50-x")
    run(tmp_path)
    assert logged(tmp_path)[0].startswith("50-x freeze /usr/local/sbin:")


def test_no_shebang_runs_under_bash(tmp_path: Path) -> None:
    """ENOEXEC: bash -c reads a file without #! as a bash script (a bashism works)."""
    path = tmp_path / D.lstrip("/") / "50-x"
    path.parent.mkdir(parents=True)
    path.write_text(f'[[ "$1" == freeze || "$1" == thaw ]] && echo "ok $1" >> "{tmp_path}/log"\n')
    path.chmod(0o755)
    result, _, _ = run(tmp_path)
    assert logged(tmp_path) == ["ok freeze", "ok thaw"] and result.status == APPLICATION


def test_no_exec_bit_fails_the_freeze_with_126(tmp_path: Path, record_property: Any) -> None:
    """A non-executable regular file still runs: bash says Permission denied (126) and the
    quiesce fails (ApplicationQuiesceFault); the pre-check flags it."""
    script(tmp_path, f"{D}/50-x", mode=0o644)
    result, calls, _ = run(tmp_path)
    record_property("expected", (126, NO_SNAPSHOT, codes.APPLICATION_QUIESCE_FAULT))
    got = (result.calls[0].result.exit_code, result.status, result.outcome)
    record_property("got", got)
    assert got == (126, NO_SNAPSHOT, codes.APPLICATION_QUIESCE_FAULT)
    assert "SNAPSHOT" not in calls
    assert "ScriptNotExecutable" in [f["name"] for f in result.findings]
    assert [f["name"] for f in make().precheck(tmp_path)] == ["ScriptNotExecutable"]


def test_environment_and_working_directory_are_vmtoolsds(tmp_path: Path) -> None:
    """Scripts inherit vmtoolsd's systemd environment and '/' (ProcMgr_ExecAsync(cmd, NULL)),
    changed by [unsetenvironment]/[setenvironment] (vmtoolsMisc.c)."""
    conf(
        tmp_path,
        "[unsetenvironment]\nLANG=\n[setenvironment]\nFOO=bar  \nvmsvc.ONLY=svc\nvmusr.NOT=x\n",
    )
    script(
        tmp_path,
        f"{D}/50-x",
        f'echo "$(pwd)|${{HOME-unset}}|${{LANG-unset}}|$FOO|$ONLY|${{NOT-unset}}|$EXTRA" '
        f'>> "{tmp_path}/log"',
    )
    engine = VMwareEngine(harness_bound_s=30, sync=lambda: None)
    engine.run_cycle(tmp_path, pacing=PROMPT, env={"EXTRA": "e"})
    assert logged(tmp_path)[1] == "/|unset|unset|bar|svc|unset|e"


def test_a_script_killed_by_a_signal_counts_as_success(
    tmp_path: Path, record_property: Any
) -> None:
    """ProcMgr reports WEXITSTATUS, 0 for a signalled process: a freeze script that dies of
    SIGKILL does not stop the quiesce."""
    script(tmp_path, f"{D}/50-x", '[ "$1" = freeze ] && kill -9 $$')
    result, _calls, _ = run(tmp_path)
    record_property("expected", (APPLICATION, -9))
    record_property("got", (result.status, result.calls[0].result.exit_code))
    assert result.status == APPLICATION and result.calls[0].result.exit_code == -9
    assert "ScriptKilledCountedAsSuccess" in [f["name"] for f in result.findings]


def test_flooding_output_does_not_stall(tmp_path: Path) -> None:
    """vmtoolsd never reads a script's output (it goes to the journal): 1 MiB cannot stall."""
    script(tmp_path, f"{D}/50-x", "head -c 1048576 /dev/zero")
    t = time.monotonic()
    result, _, _ = run(tmp_path)
    assert result.status == APPLICATION and time.monotonic() - t < 5
    assert result.calls[0].result.stdout.total == 1048576


# -- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (True, None, 900, True, False)),
        ("[vmbackup]\nexecScripts=false\n", (False, None, 900, True, False)),
        ("[vmbackup]\nexecScripts=False\n", (True, None, 900, True, False)),
        ("[vmbackup]\nexecScripts=0\ntimeout=60\n", (False, None, 60, True, False)),
        ("[vmbackup]\nexecscripts=false\n", (True, None, 900, True, False)),
        ("[vmbackup]\ntimeout=0\n", (True, None, 0, True, False)),
        ("[vmbackup]\ntimeout=-5\n", (True, None, 900, True, False)),
        ("[vmbackup]\ntimeout=2147484\n", (True, None, 900, True, False)),
        ("[vmbackup]\ntimeout=2147483\n", (True, None, 2147483, True, False)),
        ("[vmbackup]\ntimeout=60s\n", (True, None, 900, True, False)),
        ("[vmbackup]\nscriptArg=  a\\sb  \n", (True, "a b  ", 900, True, False)),
        ("[vmbackup]\nscriptArg=a\\qb\n", (True, None, 900, True, False)),
        ("[vmbackup]\nenableSyncDriver=false\n", (True, None, 900, False, False)),
        ("[vmbackup]\nexecScripts=false\nbroken line\n", (True, None, 900, True, True)),
        ("execScripts=false\n[vmbackup]\n", (True, None, 900, True, False)),
    ],
)
def test_tools_conf_defaults_limits_and_broken_values(
    tmp_path: Path, record_property: Any, text: str, expected: tuple[Any, ...]
) -> None:
    """tools.conf as vmtoolsd reads it: GLib values, VmBackupGetTimeout's limits, and a file
    that does not parse dropped whole (every key at its default)."""
    conf(tmp_path, text)
    cfg = config.load(tmp_path)
    got = (
        cfg.exec_scripts,
        cfg.script_arg,
        cfg.timeout_s,
        cfg.enable_sync_driver,
        bool(cfg.load_error),
    )
    record_property("expected", expected)
    record_property("got", got)
    assert got == expected


def _glib() -> Any:
    name = ctypes.util.find_library("glib-2.0")
    return ctypes.CDLL(name) if name else None


@pytest.mark.skipif(_glib() is None, reason="libglib-2.0 is not installed")
@pytest.mark.parametrize(
    "data",
    [
        b"[vmbackup]\ntimeout= 60 \n",
        b"[vmbackup]\ntimeout=+7\nexecScripts=true  \n",
        b"[vmbackup]\nexecScripts=yes\n",
        b" [vmbackup] \n  # c\n execScripts =0\n",
        b"[vmbackup]\n; comment\n",
        b"[vmbackup]\n=5\n",
        b"[vmbackup] x\n",
        b"\xef\xbb\xbf[vmbackup]\n",
        b"[vmbackup]\nke]y=1\n",
        b"[vmbackup]\nkey[de]=1\ntimeout=5\r\n",
        b"[vmbackup]\ntimeout=99999999999\n",
        b"[vmbackup]\ntimeout=3\n[other]\n[vmbackup]\ntimeout=4\n",
    ],
)
def test_keyfile_reads_as_the_real_glib(data: bytes) -> None:
    """The key-file reader agrees with libglib's g_key_file_load_from_data/get_* (Debian 12)."""
    g = _glib()
    g.g_key_file_new.restype = ctypes.c_void_p
    g.g_key_file_load_from_data.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_ssize_t,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_void_p),
    ]
    for fn in ("g_key_file_get_boolean", "g_key_file_get_integer"):
        getattr(g, fn).argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_void_p),
        ]
        getattr(g, fn).restype = ctypes.c_int
    kf = g.g_key_file_new()
    err = ctypes.c_void_p()
    loaded = bool(g.g_key_file_load_from_data(kf, data, len(data), 0, ctypes.byref(err)))
    try:
        ours = keyfile.parse(data)
    except keyfile.KeyFileError:
        ours = None
    assert (ours is not None) == loaded
    if ours is None:
        return
    for key, fn, conv in (
        ("timeout", "g_key_file_get_integer", keyfile.as_integer),
        ("execScripts", "g_key_file_get_boolean", keyfile.as_boolean),
    ):
        e = ctypes.c_void_p()
        value = getattr(g, fn)(kf, b"vmbackup", key.encode(), ctypes.byref(e))
        raw = ours.raw("vmbackup", key)
        try:
            mine: Any = conv(raw) if raw is not None else None
        except keyfile.ValueError_:
            mine = None
        assert mine == (None if e.value else int(value)), key


def test_exec_scripts_false_runs_no_script_but_still_quiesces(tmp_path: Path) -> None:
    """execScripts=false: no script op at all; the freeze and snapshot still happen."""
    conf(tmp_path, "[vmbackup]\nexecScripts=false\n")
    abc(tmp_path)
    result, calls, _ = run(tmp_path)
    assert logged(tmp_path) == [] and calls == ["FIFREEZE", "SNAPSHOT", "FITHAW"]
    assert result.status == APPLICATION
    assert "ScriptsDisabled" in [f["name"] for f in make().precheck(tmp_path)]


def test_broken_tools_conf_falls_back_to_defaults(tmp_path: Path) -> None:
    """VMTools_LoadConfig drops a file that does not parse: execScripts=false is lost."""
    conf(tmp_path, "[vmbackup]\nexecScripts=false\n[logging]\nnot a pair\n")
    script(tmp_path, f"{D}/50-x")
    result, _, _ = run(tmp_path)
    assert logged(tmp_path) == ["50-x freeze", "50-x thaw"]
    assert "ConfigNotLoaded" in [f["name"] for f in result.findings]
    assert "ConfigNotLoaded" in [f["name"] for f in make().precheck(tmp_path)]


def test_null_provider_syncs_and_never_freezes(tmp_path: Path, record_property: Any) -> None:
    """enableSyncDriver=false: nullProvider.c calls sync() and freezes nothing."""
    conf(tmp_path, "[vmbackup]\nenableSyncDriver=false\n")
    script(tmp_path, f"{D}/50-x")
    result, calls, events = run(tmp_path)
    record_property("expected", ["script:50-x freeze", "sync", "SNAPSHOT", "script:50-x thaw"])
    record_property("got", calls)
    assert calls == ["script:50-x freeze", "sync", "SNAPSHOT", "script:50-x thaw"]
    assert not result.freezes and not result.froze and result.status == APPLICATION
    # Nothing froze: the snapshot is the capture point (no freeze_call, no frozen).
    assert "freeze_call" not in events and "frozen" not in events and "snapshot_start" in events


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("", cycle.SYNC_DRIVER),
        ("[vmbackup]\nforceQuiesce=true\n", cycle.SYNC_DRIVER_ONLY),
        ("[vmbackup]\nforceQuiesce=true\nquiesceFS=false\n", None),
        ("[vmbackup]\nforceQuiesce=true\nquiesceFS=false\nquiesceApps=false\n", cycle.NULL),
        ("[vmbackup]\nforceQuiesce=true\nenableSyncDriver=false\n", None),
    ],
)
def test_provider_choice(tmp_path: Path, text: str, kind: str | None) -> None:
    """VmBackupStartCommon's provider choice for vmbackup.start on Linux."""
    conf(tmp_path, text)
    assert cycle.provider(config.load(tmp_path)) == kind


def test_no_provider_runs_nothing(tmp_path: Path) -> None:
    """'Requested quiescing cannot be initialized.': no script, no snapshot."""
    conf(tmp_path, "[vmbackup]\nforceQuiesce=true\nquiesceFS=false\n")
    script(tmp_path, f"{D}/50-x")
    result, calls, _ = run(tmp_path)
    assert calls == [] and (result.status, result.outcome) == (NO_SNAPSHOT, codes.NOT_INITIALIZED)


# -- outcome table -----------------------------------------------------------------------------


def test_success_order_freeze_scripts_freeze_snapshot_thaw_thaw_scripts(
    tmp_path: Path, record_property: Any
) -> None:
    """Row: all succeed -> scripts, FIFREEZE, snapshot, FITHAW, scripts in reverse; req.done."""
    abc(tmp_path)
    result, calls, events = run(tmp_path)
    expected = [
        "script:10-a freeze",
        "script:20-b freeze",
        "script:30-c freeze",
        "FIFREEZE",
        "SNAPSHOT",
        "FITHAW",
        "script:30-c thaw",
        "script:20-b thaw",
        "script:10-a thaw",
    ]
    record_property("expected", expected)
    record_property("got", calls)
    assert calls == expected
    assert (result.status, result.outcome, result.consistency) == (
        APPLICATION,
        codes.SUCCESS,
        "application",
    )
    assert events == list(EVENTS)


def test_failing_freeze_script_gets_no_freezefail_itself(
    tmp_path: Path, record_property: Any
) -> None:
    """Row: freeze script fails -> freezeFail in reverse for the ones before it only, no
    freeze, no snapshot, ApplicationQuiesceFault (VMBACKUP_SCRIPT_ERROR)."""
    abc(tmp_path, fail="20-b")
    result, calls, events = run(tmp_path)
    expected = ["script:10-a freeze", "script:20-b freeze", "script:10-a freezeFail"]
    record_property("expected", (expected, NO_SNAPSHOT, codes.APPLICATION_QUIESCE_FAULT))
    record_property("got", (calls, result.status, result.outcome))
    assert calls == expected
    assert (result.status, result.outcome) == (NO_SNAPSHOT, codes.APPLICATION_QUIESCE_FAULT)
    assert result.findings[-1]["code"] == codes.VMBACKUP_SCRIPT_ERROR
    assert result.pre is not None and result.pre.exit_code == 3
    assert events == ["precheck_end", "pre_start", "pre_end", "post_start", "post_end"]


def test_first_freeze_script_failing_runs_no_freezefail(tmp_path: Path) -> None:
    """The index walks down from the failing script: nothing before the first."""
    abc(tmp_path, fail="10-a")
    result, calls, _ = run(tmp_path)
    assert calls == ["script:10-a freeze"] and result.status == NO_SNAPSHOT


def test_freezefail_failures_are_ignored(tmp_path: Path) -> None:
    """VmBackupScriptOpQuery counts failures only for freeze and thaw: the walk goes on."""
    script(tmp_path, f"{D}/10-a", '[ "$1" = freezeFail ] && exit 1')
    script(tmp_path, f"{D}/20-b", '[ "$1" = freezeFail ] && exit 1')
    script(tmp_path, f"{D}/30-c", '[ "$1" = freeze ] && exit 1')
    result, _, _ = run(tmp_path)
    assert logged(tmp_path)[-2:] == ["20-b freezeFail", "10-a freezeFail"]
    assert result.outcome == codes.APPLICATION_QUIESCE_FAULT


def test_sync_driver_failure_runs_freezefail_for_all(tmp_path: Path, record_property: Any) -> None:
    """Row: FIFREEZE fails -> VMBACKUP_SYNC_ERROR, freezeFail for every script, no snapshot."""
    abc(tmp_path)
    result, calls, _ = run(tmp_path, freeze_code=1)
    expected = [
        "script:10-a freeze",
        "script:20-b freeze",
        "script:30-c freeze",
        "FIFREEZE",
        "script:30-c freezeFail",
        "script:20-b freezeFail",
        "script:10-a freezeFail",
    ]
    record_property("expected", (expected, NO_SNAPSHOT, codes.SYNC_ERROR))
    record_property("got", (calls, result.status, result.outcome))
    assert calls == expected and (result.status, result.outcome) == (NO_SNAPSHOT, codes.SYNC_ERROR)


def test_snapshot_failure_thaws_and_runs_freezefail(tmp_path: Path, record_property: Any) -> None:
    """Row: the host's snapshot fails -> vmbackup.abort: undo (FITHAW), freezeFail for all."""
    abc(tmp_path)
    result, calls, _ = run(tmp_path, snap_ok=False)
    expected = [
        "script:10-a freeze",
        "script:20-b freeze",
        "script:30-c freeze",
        "FIFREEZE",
        "SNAPSHOT",
        "FITHAW",
        "script:30-c freezeFail",
        "script:20-b freezeFail",
        "script:10-a freezeFail",
    ]
    record_property("expected", (expected, NO_SNAPSHOT, codes.REMOTE_ABORT))
    record_property("got", (calls, result.status, result.outcome))
    assert calls == expected
    assert (result.status, result.outcome) == (NO_SNAPSHOT, codes.REMOTE_ABORT)


def test_thaw_failure_runs_freezefail_not_thaw(tmp_path: Path) -> None:
    """Row: FITHAW fails after the snapshot -> 'Error when notifying the sync provider.',
    SYNC_ERROR: the scripts get freezeFail; the snapshot exists (NOT_QUIESCED)."""
    abc(tmp_path)
    result, calls, _ = run(tmp_path, thaw_code=2)
    assert calls[-3:] == [
        "script:30-c freezeFail",
        "script:20-b freezeFail",
        "script:10-a freezeFail",
    ]
    assert (result.status, result.outcome) == (NOT_QUIESCED, codes.SYNC_ERROR)


def test_failing_thaw_script_does_not_stop_the_others(tmp_path: Path, record_property: Any) -> None:
    """Row: thaw script fails -> the rest still run, the error is reported at the end
    (VMBACKUP_SCRIPT_ERROR after the snapshot): snapshot kept, NOT_QUIESCED."""
    abc(tmp_path, fail="20-b", verb="thaw")
    result, _calls, _ = run(tmp_path)
    record_property("expected", (["30-c thaw", "20-b thaw", "10-a thaw"], NOT_QUIESCED))
    got = [line for line in logged(tmp_path) if line.endswith("thaw")]
    record_property("got", (got, result.status))
    assert got == ["30-c thaw", "20-b thaw", "10-a thaw"]
    assert (result.status, result.outcome) == (NOT_QUIESCED, codes.SCRIPT_ERROR)
    assert result.snapshot_taken and result.post is not None and result.post.exit_code == 3


# -- timeouts ----------------------------------------------------------------------------------


def test_timeout_in_a_freeze_script_kills_it_and_unwinds(
    tmp_path: Path, record_property: Any
) -> None:
    """Abort timer during SCRIPT_FREEZE: SIGTERM to the script, 'Quiesce canceled.'
    (VMBACKUP_REMOTE_ABORT), freezeFail for the scripts before it, no snapshot."""
    conf(tmp_path, "[vmbackup]\ntimeout=1\n")
    script(tmp_path, f"{D}/10-a")
    script(tmp_path, f"{D}/20-hang", '[ "$1" = freeze ] && exec sleep 30')
    t = time.monotonic()
    result, _calls, _ = run(tmp_path)
    assert time.monotonic() - t < 5
    record_property("expected", (NO_SNAPSHOT, codes.REMOTE_ABORT, ["10-a freezeFail"]))
    record_property("got", (result.status, result.outcome, logged(tmp_path)[2:]))
    assert (result.status, result.outcome) == (NO_SNAPSHOT, codes.REMOTE_ABORT)
    hung = result.calls[1].result
    assert hung.timed_out and "sent SIGTERM" in " ".join(hung.log) and not hung.left_running
    assert logged(tmp_path) == ["10-a freeze", "20-hang freeze", "10-a freezeFail"]


def test_timeout_in_a_thaw_script_leaves_the_rest_unrun(tmp_path: Path) -> None:
    """Abort timer during SCRIPT_THAW: the script is killed and no earlier script gets
    'thaw' (VmBackupOnError: SCRIPT_THAW -> IDLE); the snapshot stays."""
    conf(tmp_path, "[vmbackup]\ntimeout=1\n")
    script(tmp_path, f"{D}/10-a")
    script(tmp_path, f"{D}/20-hang", '[ "$1" = thaw ] && exec sleep 30')
    result, _, _ = run(tmp_path)
    assert logged(tmp_path) == ["10-a freeze", "20-hang freeze", "20-hang thaw"]
    assert (result.status, result.outcome) == (NOT_QUIESCED, codes.REMOTE_ABORT)


def test_timeout_zero_means_no_timer_and_the_harness_bound_ends_it(tmp_path: Path) -> None:
    """timeout=0 turns the abort timer off: vmtoolsd would wait forever; the harness's bound
    ends the cycle and says so."""
    conf(tmp_path, "[vmbackup]\ntimeout=0\n")
    script(tmp_path, f"{D}/20-hang", '[ "$1" = freeze ] && exec sleep 30')
    engine = VMwareEngine(harness_bound_s=0.5, sync=lambda: None)
    result = engine.run_cycle(tmp_path, freezer=Rec([]), snapshotter=Rec([]), pacing=PROMPT)
    assert (result.status, result.outcome) == (NO_SNAPSHOT, codes.HARNESS_BOUND)
    assert "wait forever" in result.findings[-1]["message"]


def test_harness_bound_below_the_timer_acts_as_the_timer_and_says_so(tmp_path: Path) -> None:
    """Default timeout 900 s above the harness bound: the same unwinding, with a finding."""
    script(tmp_path, f"{D}/20-hang", '[ "$1" = freeze ] && exec sleep 30')
    engine = VMwareEngine(harness_bound_s=0.5, sync=lambda: None)
    result = engine.run_cycle(tmp_path, freezer=Rec([]), snapshotter=Rec([]), pacing=PROMPT)
    assert result.outcome == codes.REMOTE_ABORT
    assert "HarnessBound" in [f["name"] for f in result.findings]


def test_a_hung_freezefail_script_has_no_timer(tmp_path: Path) -> None:
    """freezeFail scripts run in SCRIPT_ERROR, where VmBackupDoAbort does nothing."""
    conf(tmp_path, "[vmbackup]\ntimeout=1\n")
    script(tmp_path, f"{D}/10-a", '[ "$1" = freezeFail ] && exec sleep 30')
    script(tmp_path, f"{D}/20-b", '[ "$1" = freeze ] && exit 1')
    engine = VMwareEngine(harness_bound_s=2, sync=lambda: None)
    result = engine.run_cycle(tmp_path, freezer=Rec([]), snapshotter=Rec([]), pacing=PROMPT)
    assert result.outcome == codes.HARNESS_BOUND
    assert result.calls[-1].phase == "freezeFail" and result.calls[-1].result.timed_out


# -- pacing ------------------------------------------------------------------------------------


class FakeProc:
    """A script process that ends after ``runs`` seconds of the fake clock."""

    def __init__(self, clock: FakeClock, runs: float, code: int = 0) -> None:
        self.clock, self.end, self.code = clock, clock.t + runs, code
        self.pid, self.returncode, self.stdout, self.stderr = 4_194_305, None, None, None

    def poll(self) -> int | None:
        if self.clock.t >= self.end:
            self.returncode = self.code
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        raise AssertionError("not with a fake clock")


def test_faithful_pacing_notices_each_end_at_the_next_one_second_tick(
    tmp_path: Path, record_property: Any
) -> None:
    """stateMachine.c pollPeriod = 1000 ms: a script's end, the freeze's end and the thaw are
    acted on at the next tick (PROMPT acts at once)."""
    abc(tmp_path)
    clock = FakeClock()
    starts: list[float] = []

    def spawn(argv: Any) -> FakeProc:
        starts.append(round(clock.t - 1000.0, 2))
        return FakeProc(clock, 0.3)

    engine = VMwareEngine(harness_bound_s=60, sync=lambda: None)
    marks: list[tuple[str, float]] = []
    engine.run_cycle(
        tmp_path,
        freezer=Rec([]),
        snapshotter=Rec([]),
        clock=clock,
        spawn=spawn,
        pacing=FAITHFUL,
        observer=lambda e: marks.append((e, round(clock.t - 1000.0, 2))),
    )
    expected = [0.0, 1.0, 2.0, 5.0, 6.0, 7.0]  # freeze at 3, commit at 4, thaw, tick at 5
    record_property("expected", expected)
    record_property("got", starts)
    assert starts == expected
    assert ("freeze_start", 3.0) in marks and ("snapshot_start", 4.0) in marks


def test_prompt_pacing_has_no_ticks(tmp_path: Path) -> None:
    """PROMPT: the same order, without the 1-second ticks."""
    abc(tmp_path)
    clock = FakeClock()
    starts: list[float] = []

    def spawn(argv: Any) -> FakeProc:
        starts.append(round(clock.t - 1000.0, 2))
        return FakeProc(clock, 0.3)

    VMwareEngine(harness_bound_s=60).run_cycle(
        tmp_path, freezer=Rec([]), snapshotter=Rec([]), clock=clock, spawn=spawn, pacing=PROMPT
    )
    assert starts == pytest.approx([0.0, 0.3, 0.6, 0.9, 1.2, 1.5], abs=0.15)


# -- hosting and registry ----------------------------------------------------------------------


def test_registry_builds_the_engine() -> None:
    """engines.get('vmware') -> this engine."""
    engine = engines.get("vmware")
    assert engine.name == "vmware" and isinstance(engine, VMwareEngine)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            Given(frozenset({"hook"}), hook_name="50-postgres.sh"),
            [("hook", f"{D}/50-postgres.sh")],
        ),
        (
            Given(frozenset({"pre", "post", "config"})),
            [
                ("config", "/etc/vmware-tools/tools.conf"),
                ("pre", "/usr/sbin/pre-freeze-script"),
                ("post", "/usr/sbin/post-thaw-script"),
            ],
        ),
        (Given(frozenset({"post"})), [("post", "/usr/sbin/post-thaw-script")]),
    ],
)
def test_hosting_places_files_where_vmbackup_looks(
    given: Given, expected: list[tuple[str, str]], record_property: Any
) -> None:
    """A hook -> backupScripts.d/<its name>; pre/post -> the legacy pair; config -> tools.conf;
    nothing generated (the defaults run the scripts)."""
    hosting = make().host(given)
    got = [(p.role, p.location) for p in hosting.placements]
    record_property("expected", expected)
    record_property("got", got)
    assert got == expected and hosting.hosted and not hosting.generated and hosting.calls


@pytest.mark.parametrize(
    "roles", [{"document"}, {"hook", "pre"}, {"config"}], ids=["document", "hook+pre", "config"]
)
def test_hosting_refuses_what_it_cannot_run(roles: set[str]) -> None:
    """An SSM document, a hook with a pre/post pair, or no script: one clear sentence."""
    hosting = make().host(Given(frozenset(roles), hook_name="x"))
    assert not hosting.hosted and hosting.refused.count(".") <= 1


def test_the_record_is_json_ready(tmp_path: Path) -> None:
    """to_dict carries framework, outcome and every call with its phase."""
    abc(tmp_path, fail="30-c")
    result, _, _ = run(tmp_path)
    d = result.to_dict()
    assert d["framework"] == "vmware" and d["outcome"] == codes.APPLICATION_QUIESCE_FAULT
    assert [c["phase"] for c in d["calls"]] == ["freeze"] * 3 + ["freezeFail"] * 2
    assert d["scripts"]["pre"]["exit_code"] == 3


def test_kill_reaches_the_script_itself_not_its_group(tmp_path: Path) -> None:
    """ProcMgr_KillByPid signals the script's pid only: a child it started lives on."""
    conf(tmp_path, "[vmbackup]\ntimeout=1\n")
    pidfile = tmp_path / "child.pid"
    script(
        tmp_path,
        f"{D}/20-hang",
        f'[ "$1" = freeze ] && {{ sleep 30 & echo $! > "{pidfile}"; wait; }}',
    )
    try:
        result, _, _ = run(tmp_path)
        assert result.outcome == codes.REMOTE_ABORT
        child = int(pidfile.read_text())
        assert Path(f"/proc/{child}").exists()
    finally:
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
