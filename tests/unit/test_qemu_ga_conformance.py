"""Conformance of the qemu-guest-agent fsfreeze-hook engine (docs/frameworks/qemu-ga.md).

Each case builds a tiny machine root in tmp_path (``/etc/qemu/qemu-ga.conf``, a hook or
``fsfreeze-hook.d`` scripts) and runs the engine with recording fakes for the freeze and the
snapshot; the hooks are real shell scripts, bounded by a short harness bound. Sources are
named in each docstring's first sentence.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from pytest_vmsnap.framework import engines
from pytest_vmsnap.framework.engine import EVENTS, Given
from pytest_vmsnap.framework.interfaces import FreezeResult, SnapshotResult, ThawResult
from pytest_vmsnap.framework.outcome import APPLICATION, NO_SNAPSHOT, NOT_QUIESCED
from pytest_vmsnap.framework.qemu_ga import agent, checks, hosts
from pytest_vmsnap.framework.qemu_ga.config import (
    MINIMAL_CONF,
    KeyFileError,
    parse_keyfile,
    read_config,
)
from pytest_vmsnap.framework.qemu_ga.discovery import WRAPPER, entries, glob_names, plan
from pytest_vmsnap.framework.qemu_ga.engine import HOOK_BOUND_S, QemuGaEngine
from pytest_vmsnap.framework.scripts import FAITHFUL, PROMPT

HOOK = "/etc/qemu/fsfreeze-hook"
D = "/etc/qemu/fsfreeze-hook.d"
BOUND = 1.5


def write(root: Path, location: str, text: str, mode: int = 0o755) -> Path:
    path = root / location.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def machine(root: Path, conf: str | None = MINIMAL_CONF, log_dir: bool = True) -> Path:
    if conf is not None:
        write(root, "/etc/qemu/qemu-ga.conf", conf, 0o644)
    if log_dir:
        (root / "var/log").mkdir(parents=True, exist_ok=True)
    return root


def tracing(record: Path, body: str = "") -> str:
    """A hook script that appends its name and verb to ``record``, then runs ``body``."""
    return f'#!/bin/sh\necho "$(basename "$0") $1" >> {record}\n{body}\n'


class Rec:
    """Recording freezer and snapshotter: each step appends to the shared record file."""

    real = True

    def __init__(self, record: Path, freeze: int = 0, snap: bool = True, thaw: int = 0):
        self.record, self.freeze_code, self.snap, self.thaw_code = record, freeze, snap, thaw

    def _log(self, what: str) -> None:
        with open(self.record, "a") as f:
            f.write(what + "\n")

    def freeze(self) -> FreezeResult:
        self._log("FIFREEZE")
        return FreezeResult(self.freeze_code, "EBUSY" if self.freeze_code else "", ["/"])

    def thaw(self) -> ThawResult:
        self._log("FITHAW")
        return ThawResult(self.thaw_code, "thawed early" if self.thaw_code else "")

    def snapshot(self) -> SnapshotResult:
        self._log("snapshot")
        return SnapshotResult(
            0 if self.snap else 5, self.snap, "fake", message="" if self.snap else "disk full"
        )


def cycle(root: Path, rec: Rec | None = None, events: list[str] | None = None, **kw: object):
    engine = QemuGaEngine(hook_bound_s=float(kw.pop("bound", BOUND)), **kw)  # type: ignore[arg-type]
    fake = rec or Rec(root / "record")
    return engine.run_cycle(
        root,
        freezer=fake,
        snapshotter=fake,
        observer=(events.append if events is not None else None),
        pacing=PROMPT,
    )


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def record(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def names(result) -> list[str]:
    return [f["name"] for f in result.findings]


# --------------------------------------------------------------------------------------
# Config: qga/main.c config_load / config_parse
# --------------------------------------------------------------------------------------


def test_no_config_no_hook(tmp_path: Path, record_property) -> None:
    """qga/main.c: without -F or the fsfreeze-hook key no hook runs, the freeze still happens."""
    root = machine(tmp_path, conf=None)
    write(root, f"{D}/app.sh", tracing(root / "record"))
    result = cycle(root)
    got = (result.status, result.outcome, record(root / "record"))
    record_property("expected", "NOT_QUIESCED, HOOK_NOT_ENABLED, freeze+snapshot+thaw, no hook")
    record_property("got", str(got))
    assert got == (NOT_QUIESCED, "HOOK_NOT_ENABLED", ["FIFREEZE", "snapshot", "FITHAW"])
    assert checks.HOOK_NOT_ENABLED in names(result)
    assert "fsfreeze-hook=/etc/qemu/fsfreeze-hook" in result.findings[0]["action"]


def test_config_key_enables_hook(tmp_path: Path) -> None:
    """qga/main.c config_load: [general] fsfreeze-hook=PATH names the hook qemu-ga runs."""
    root = machine(tmp_path, conf="# c\n[general]\nfsfreeze-hook = /opt/h\n")
    assert read_config(root).hook == "/opt/h"


def test_key_in_other_group_is_ignored(tmp_path: Path) -> None:
    """qga/main.c config_load: only the [general] group is read."""
    root = machine(tmp_path, conf="[agent]\nfsfreeze-hook=/etc/qemu/fsfreeze-hook\n")
    assert read_config(root).hook is None


@pytest.mark.parametrize(
    "text",
    [
        "[general]\nfsfreeze-hook\n",
        "fsfreeze-hook=/x\n[general]\n",
        "[general\nx=1\n",
        "[general]\nfsfreeze-hook=a\\q\n",
    ],
    ids=["no-equals", "key-before-group", "bad-group", "bad-escape"],
)
def test_broken_config_stops_the_agent(tmp_path: Path, text: str, record_property) -> None:
    """qga/main.c config_load: a key file that does not parse makes qemu-ga exit at start-up."""
    root = machine(tmp_path, conf=text)
    cfg = read_config(root)
    result = cycle(root)
    got = (cfg.starts, result.status, result.outcome, record(root / "record"))
    record_property("expected", "agent down: NO_SNAPSHOT AGENT_NOT_RUNNING, nothing frozen")
    record_property("got", str(got))
    assert got == (False, NO_SNAPSHOT, "AGENT_NOT_RUNNING", [])
    assert cfg.error.startswith("error loading configuration from path: /etc/qemu/qemu-ga.conf")


def test_broken_config_proxmox_backs_up_unfrozen(tmp_path: Path) -> None:
    """PVE VZDump qga_fs_freeze: an agent that is not running is skipped, the backup goes on."""
    root = machine(tmp_path, conf="garbage\n")
    result = cycle(root, host_tool=hosts.PROXMOX)
    assert (result.status, result.outcome) == (NOT_QUIESCED, "AGENT_NOT_RUNNING")
    assert record(root / "record") == ["snapshot"]
    assert result.consistency == "crash"


def test_keyfile_rules() -> None:
    """glib gkeyfile: comments, whitespace around '=', last duplicate wins, CRLF, \\s escape."""
    groups = parse_keyfile("# x\r\n[general]\r\n a = 1\r\na=2\r\n\r\n[general]\r\nb=\\s\r\n")
    assert groups == {"general": {"a": "2", "b": "\\s"}}
    with pytest.raises(KeyFileError):
        parse_keyfile("[general]\njunk\n")


def test_config_escape_and_duplicate(tmp_path: Path) -> None:
    """glib g_key_file_get_string: escapes are decoded; the later of two keys wins."""
    root = machine(tmp_path, conf="[general]\nfsfreeze-hook=/a\nfsfreeze-hook=/b\\sc\n")
    assert read_config(root).hook == "/b c"


def test_daemon_args_ignored_under_systemd(tmp_path: Path, record_property) -> None:
    """Debian qemu-guest-agent.service: ExecStart has no options; DAEMON_ARGS is SysV-only."""
    root = machine(tmp_path, conf=None)
    write(root, "/etc/default/qemu-guest-agent", 'DAEMON_ARGS="-F"\n', 0o644)
    cfg = read_config(root)
    result = cycle(root)
    record_property("expected", "-F in DAEMON_ARGS: still HOOK_NOT_ENABLED, message says why")
    record_property("got", result.outcome)
    assert cfg.daemon_args_hook == HOOK and cfg.hook is None
    assert result.outcome == "HOOK_NOT_ENABLED"
    assert "SysV" in result.findings[0]["message"]


def test_daemon_args_f_with_space(tmp_path: Path) -> None:
    """qga/main.c getopt 'F::': -F takes only an attached argument; '-F /x' means the default."""
    root = machine(tmp_path, conf=None)
    write(root, "/etc/default/qemu-guest-agent", 'DAEMON_ARGS="-F /usr/local/h"\n', 0o644)
    cfg = read_config(root)
    assert (cfg.daemon_args_hook, cfg.daemon_args_space) == (HOOK, True)
    write(root, "/etc/default/qemu-guest-agent", 'DAEMON_ARGS="-F/usr/local/h"\n', 0o644)
    assert read_config(root).daemon_args_hook == "/usr/local/h"


# --------------------------------------------------------------------------------------
# Discovery: the stock wrapper's directory, glob order, skipped names
# --------------------------------------------------------------------------------------


def test_wrapper_glob_order_same_for_thaw(tmp_path: Path, record_property) -> None:
    """fsfreeze-hook: "$FSFREEZE_D"/* in dash's byte order, the same order for freeze and thaw."""
    root = machine(tmp_path)
    for name in ("b.sh", "A.sh", "10-x", "9-y", "a.sh"):
        write(root, f"{D}/{name}", tracing(root / "record"))
    cycle(root)
    got = record(root / "record")
    order = ["10-x", "9-y", "A.sh", "a.sh", "b.sh"]
    expected = [f"{n} freeze" for n in order] + ["FIFREEZE", "snapshot", "FITHAW"]
    expected += [f"{n} thaw" for n in order]
    record_property("expected", str(expected))
    record_property("got", str(got))
    assert got == expected


def test_wrapper_skips_ignored_and_not_executable(tmp_path: Path, record_property) -> None:
    """fsfreeze-hook is_ignored_file and [ -x ]: leftovers and files without x are passed over."""
    root = machine(tmp_path)
    skipped = ["x.sample", "x~", "x.bak", "x.dpkg-old", "x.rpmnew", "x.orig"]
    for name in skipped:
        write(root, f"{D}/{name}", tracing(root / "record"))
    write(root, f"{D}/noexec.sh", tracing(root / "record"), 0o644)
    write(root, f"{D}/.hidden", tracing(root / "record"))
    write(root, f"{D}/run.sh", tracing(root / "record"))
    result = cycle(root)
    ran = [r.split()[0] for r in record(root / "record") if " " in r]
    record_property("expected", "only run.sh runs; 7 HOOK_SCRIPT_SKIPPED findings")
    record_property("got", f"{sorted(set(ran))}, {names(result).count(checks.HOOK_SCRIPT_SKIPPED)}")
    assert set(ran) == {"run.sh"}
    assert names(result).count(checks.HOOK_SCRIPT_SKIPPED) == 7
    assert result.outcome == "QUIESCED"


def test_wrapper_with_nothing_to_run(tmp_path: Path) -> None:
    """fsfreeze-hook: no executable script -> the wrapper exits 0 and the freeze goes ahead."""
    root = machine(tmp_path)
    write(root, f"{D}/only.sample", tracing(root / "record"))
    result = cycle(root)
    assert (result.status, result.outcome) == (NOT_QUIESCED, "NO_HOOK_SCRIPT")
    assert record(root / "record") == ["FIFREEZE", "snapshot", "FITHAW"]


def test_directory_next_to_configured_path(tmp_path: Path) -> None:
    """fsfreeze-hook: FSFREEZE_D=$(dirname -- "$0")/fsfreeze-hook.d, $0 being the hook path."""
    root = machine(tmp_path, conf="[general]\nfsfreeze-hook=/usr/local/qga/hook\n")
    write(root, "/usr/local/qga/fsfreeze-hook.d/a", tracing(root / "record"))
    write(root, f"{D}/b", tracing(root / "record"))
    p = plan(root, "/usr/local/qga/hook")
    assert p.kind == WRAPPER and [e.location for e in p.scripts] == [
        "/usr/local/qga/fsfreeze-hook.d/a"
    ]
    cycle(root)
    assert "a freeze" in record(root / "record") and "b freeze" not in record(root / "record")


def test_glob_names_byte_order(tmp_path: Path) -> None:
    """dash expandmeta: glob results sorted with strcmp (not the locale's collation)."""
    for n in ("é", "z", "Z", "_"):
        (tmp_path / n).touch()
    assert glob_names(tmp_path) == ["Z", "_", "z", "é"]


def test_directory_entry_with_x_is_run_and_fails(tmp_path: Path) -> None:
    """dash: [ -x dir ] is true; running it fails with 126, which the wrapper only logs."""
    root = machine(tmp_path)
    (root / D.lstrip("/") / "subdir").mkdir(parents=True)
    write(root, f"{D}/z.sh", tracing(root / "record"))
    assert [e.name for e in entries(root, D) if e.runs] == ["subdir", "z.sh"]
    result = cycle(root)
    assert result.outcome == "HOOK_FAILURE_HIDDEN"
    assert result.calls[0].result.exit_code == 126


# --------------------------------------------------------------------------------------
# Calling convention: argv, direct exec, environment, working directory
# --------------------------------------------------------------------------------------


def test_direct_hook_argv_env_cwd(tmp_path: Path, record_property) -> None:
    """qga execute_fsfreeze_hook: execle(hook, hook, "freeze"|"thaw", environ), cwd /, no HOME."""
    root = machine(tmp_path)
    out = root / "seen"
    write(
        root,
        HOOK,
        f'#!/bin/sh\necho "$0|$#|$1|$(pwd)|${{HOME-unset}}|$PATH|$EXTRA" >> {out}\n',
    )
    result = QemuGaEngine(hook_bound_s=BOUND).run_cycle(root, env={"EXTRA": "x"})
    got = out.read_text().splitlines()
    hook = str(root / HOOK.lstrip("/"))
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    record_property("expected", "argv [hook, verb]; cwd /; HOME unset; systemd PATH; env added")
    record_property("got", str([g.replace(str(root), "<root>") for g in got]))
    assert got == [f"{hook}|1|freeze|/|unset|{path}|x", f"{hook}|1|thaw|/|unset|{path}|x"]
    assert [c.phase for c in result.calls] == ["freeze", "thaw"]
    assert result.calls[0].path == HOOK


def test_direct_hook_is_not_the_wrapper(tmp_path: Path) -> None:
    """qga runs the file at the hook path; .d scripts run only if that file runs them."""
    root = machine(tmp_path)
    write(root, HOOK, "#!/bin/sh\nexit 0\n")
    write(root, f"{D}/a", tracing(root / "record"))
    cycle(root)
    assert record(root / "record") == ["FIFREEZE", "snapshot", "FITHAW"]


@pytest.mark.parametrize("version", agent.VERSIONS)
def test_hook_without_exec_bit(tmp_path: Path, version: str, record_property) -> None:
    """QEMU 7.2 access(X_OK) / QEMU >= 9.1 execvp EACCES: the freeze fails, nothing runs."""
    root = machine(tmp_path)
    write(root, HOOK, tracing(root / "record"), 0o644)
    result = cycle(root, agent_version=version)
    expected = {
        agent.QEMU_7_2: f"can't access fsfreeze hook '{HOOK}': Permission denied",
        agent.QEMU_10_0: "child process has failed to execute fsfreeze hook: failed to exec "
        f"'{HOOK}': Permission denied",
    }[version]
    record_property("expected", f"NO_SNAPSHOT FREEZE_HOOK_FAILED: {expected}")
    record_property("got", f"{result.status} {result.outcome}: {result.message}")
    assert (result.status, result.outcome) == (NO_SNAPSHOT, "FREEZE_HOOK_FAILED")
    assert expected in result.message
    assert record(root / "record") == []
    assert checks.HOOK_NOT_EXECUTABLE in names(result)


def test_owner_x_bit_is_enough_for_root(tmp_path: Path) -> None:
    """access(X_OK) as root: any execute bit passes (mode 0744)."""
    root = machine(tmp_path)
    write(root, HOOK, tracing(root / "record"), 0o744)
    assert cycle(root).outcome == "QUIESCED"


@pytest.mark.parametrize(
    ("version", "outcome"),
    [(agent.QEMU_7_2, "FREEZE_HOOK_FAILED"), (agent.QEMU_10_0, "QUIESCED")],
)
def test_hook_without_shebang(tmp_path: Path, version: str, outcome: str, record_property) -> None:
    """QEMU 7.2 execle ENOEXEC -> _exit(EXIT_FAILURE) (status 1); execvp (>= 9.1) runs /bin/sh."""
    root = machine(tmp_path)
    write(root, HOOK, f'echo "nos $1" >> {root / "record"}\n')
    result = cycle(root, agent_version=version)
    record_property("expected", outcome)
    record_property("got", f"{result.outcome}: {result.message}")
    assert result.outcome == outcome
    if version == agent.QEMU_7_2:
        assert "fsfreeze hook has failed with status 1" in result.message


def test_wrapper_script_without_shebang_runs_under_sh(tmp_path: Path) -> None:
    """dash runs a file that execve refuses with ENOEXEC as a shell script itself."""
    root = machine(tmp_path)
    write(root, f"{D}/nos", f'echo "nos $1" >> {root / "record"}\n')
    assert cycle(root).outcome == "QUIESCED"
    assert record(root / "record")[0] == "nos freeze"


@pytest.mark.parametrize(
    ("version", "body", "expected"),
    [
        (agent.QEMU_7_2, "echo lock failed; exit 3", "fsfreeze hook has failed with status 3"),
        (
            agent.QEMU_10_0,
            "echo lock failed; exit 3",
            "child process has failed to execute fsfreeze hook: lock failed",
        ),
        (
            agent.QEMU_10_0,
            "exit 3",
            "child process has failed to execute fsfreeze hook: exit status 3",
        ),
        (agent.QEMU_7_2, "kill -TERM $$", "fsfreeze hook has terminated abnormally"),
        (agent.QEMU_10_0, "kill -TERM $$", "child process has terminated abnormally"),
    ],
    ids=["7.2-exit", "10.0-exit-output", "10.0-exit-silent", "7.2-signal", "10.0-signal"],
)
def test_failure_words(
    tmp_path: Path, version: str, body: str, expected: str, record_property
) -> None:
    """qga execute_fsfreeze_hook / ga_run_command: the freeze command's error for a failed hook."""
    root = machine(tmp_path)
    write(root, HOOK, f'#!/bin/sh\n[ "$1" = freeze ] && {{ {body}; }}\nexit 0\n')
    result = cycle(root, agent_version=version)
    record_property("expected", expected)
    record_property("got", result.message)
    assert expected in result.message
    assert result.status == NO_SNAPSHOT


def test_7_2_output_goes_nowhere(tmp_path: Path) -> None:
    """QEMU 7.2 reopen_fd_to_null: what the hook prints reaches no log (the report keeps it)."""
    root = machine(tmp_path)
    write(root, HOOK, '#!/bin/sh\necho "quiescing $1"\n')
    result = cycle(root)
    assert result.calls[0].result.stdout.text() == "quiescing freeze\n"
    assert not (root / "var/log/qga-fsfreeze-hook.log").exists()


def test_wrapper_logs_script_output(tmp_path: Path) -> None:
    """fsfreeze-hook (7.2): "$file" "$@" >>$LOGFILE 2>&1 with a line before and after."""
    root = machine(tmp_path)
    write(root, f"{D}/a", '#!/bin/sh\necho "out $1"\necho "err $1" >&2\n')
    result = cycle(root)
    log = (root / "var/log/qga-fsfreeze-hook.log").read_text()
    assert f"execute {D}/a freeze" in log and "out freeze\nerr freeze" in log
    assert f"{D}/a finished with status=0" in log
    assert result.calls[0].result.stdout.text() == "out freeze\nerr freeze\n"


def test_missing_hook(tmp_path: Path) -> None:
    """QEMU 7.2 access(X_OK) ENOENT: "can't access fsfreeze hook ...: No such file or directory"."""
    root = machine(tmp_path)
    result = cycle(root)
    assert (result.status, result.outcome) == (NO_SNAPSHOT, "FREEZE_HOOK_FAILED")
    assert f"can't access fsfreeze hook '{HOOK}': No such file or directory" in result.message
    assert checks.HOOK_NOT_FOUND in names(result)


# --------------------------------------------------------------------------------------
# No time limit in qemu-ga: the harness bound
# --------------------------------------------------------------------------------------


def _gone(pidfile: Path) -> bool:
    pid = int(pidfile.read_text())
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    return False


def test_hanging_hook_hits_the_bound(tmp_path: Path, record_property) -> None:
    """qga waitpid has no timeout: the cycle ends at the harness bound, qemu-ga would wait on."""
    root = machine(tmp_path)
    write(root, HOOK, f"#!/bin/sh\necho $$ > {root / 'pid'}\nexec sleep 30\n")
    t0 = time.monotonic()
    result = cycle(root, bound=0.5)
    took = time.monotonic() - t0
    record_property("expected", "NO_SNAPSHOT HOOK_HUNG, 'would wait for it forever', no freeze")
    record_property("got", f"{result.status} {result.outcome}; {took:.1f} s")
    assert (result.status, result.outcome) == (NO_SNAPSHOT, "HOOK_HUNG")
    assert "would wait for it forever" in result.message
    assert record(root / "record") == [] and took < 5
    assert result.calls[0].result.timed_out and _gone(root / "pid")


def test_default_bound() -> None:
    """Harness bound default: 600 s (Proxmox VE's 2025 fsfreeze helper waits 10 minutes)."""
    assert HOOK_BOUND_S == 600.0 and QemuGaEngine().hook_bound_s == 600.0


@pytest.mark.parametrize(
    ("version", "outcome"), [(agent.QEMU_7_2, "QUIESCED"), (agent.QEMU_10_0, "HOOK_HUNG")]
)
def test_background_child_holding_output(
    tmp_path: Path, version: str, outcome: str, record_property
) -> None:
    """ga_pipe_read_str (>= 9.1) reads to end-of-file: a child holding stdout keeps qga waiting."""
    root = machine(tmp_path)
    write(
        root,
        HOOK,
        f'#!/bin/sh\n[ "$1" = freeze ] && {{ sleep 30 & echo $! > {root / "pid"}; }}\nexit 0\n',
    )
    result = cycle(root, agent_version=version, bound=0.6)
    record_property("expected", outcome)
    record_property("got", f"{result.outcome}: {result.message}")
    assert result.outcome == outcome
    if version == agent.QEMU_10_0:
        assert "holds its stdout/stderr" in result.message
    else:
        os.kill(int((root / "pid").read_text()), signal.SIGKILL)


def test_hanging_wrapper_script(tmp_path: Path) -> None:
    """The wrapper waits for each script; qemu-ga waits for the wrapper: same bound, HOOK_HUNG."""
    root = machine(tmp_path)
    write(root, f"{D}/a", "#!/bin/sh\nexec sleep 30\n")
    write(root, f"{D}/b", tracing(root / "record"))
    result = cycle(root, bound=0.5)
    assert (result.status, result.outcome) == (NO_SNAPSHOT, "HOOK_HUNG")
    assert record(root / "record") == []


# --------------------------------------------------------------------------------------
# The outcome table (libvirt qemu_snapshot.c; PVE VZDump/QemuServer.pm)
# --------------------------------------------------------------------------------------


def test_success_order_and_events(tmp_path: Path, record_property) -> None:
    """commands-posix.c: hook freeze, FIFREEZE, snapshot, FITHAW, hook thaw; events in order."""
    root = machine(tmp_path)
    write(root, HOOK, tracing(root / "record"))
    events: list[str] = []
    result = cycle(root, events=events)
    got = record(root / "record")
    record_property(
        "expected", "fsfreeze-hook freeze, FIFREEZE, snapshot, FITHAW, fsfreeze-hook thaw"
    )
    record_property("got", str(got))
    assert got == ["fsfreeze-hook freeze", "FIFREEZE", "snapshot", "FITHAW", "fsfreeze-hook thaw"]
    assert events == list(EVENTS)
    assert (result.status, result.outcome, result.consistency) == (
        APPLICATION,
        "QUIESCED",
        "application",
    )
    assert [p.phase for p in result.timeline] == [
        "precheck",
        "pre",
        "freeze",
        "snapshot",
        "thaw",
        "post",
    ]


@pytest.mark.parametrize(
    ("host", "status", "steps"),
    [
        (hosts.LIBVIRT, NO_SNAPSHOT, ["fsfreeze-hook freeze"]),
        (hosts.PROXMOX, NOT_QUIESCED, ["fsfreeze-hook freeze", "snapshot", "fsfreeze-hook thaw"]),
    ],
)
def test_freeze_hook_fails(
    tmp_path: Path, host: str, status: int, steps: list[str], record_property
) -> None:
    """qmp_guest_fsfreeze_freeze_list returns the hook's error unfrozen; libvirt stops, PVE not."""
    root = machine(tmp_path)
    write(root, HOOK, tracing(root / "record", '[ "$1" = freeze ] && exit 4; exit 0'))
    events: list[str] = []
    result = cycle(root, events=events, host_tool=host)
    record_property("expected", f"{status} FREEZE_HOOK_FAILED {steps}")
    record_property("got", f"{result.status} {result.outcome} {record(root / 'record')}")
    assert (result.status, result.outcome) == (status, "FREEZE_HOOK_FAILED")
    assert record(root / "record") == steps
    assert "fsfreeze hook has failed with status 4" in result.message
    assert "freeze_call" not in events and "frozen" not in events


@pytest.mark.parametrize(
    ("host", "status", "steps"),
    [
        (hosts.LIBVIRT, NO_SNAPSHOT, ["h freeze", "FIFREEZE", "h thaw"]),
        (hosts.PROXMOX, NOT_QUIESCED, ["h freeze", "FIFREEZE", "h thaw", "snapshot", "h thaw"]),
    ],
)
def test_fifreeze_fails(tmp_path: Path, host: str, status: int, steps: list[str]) -> None:
    """freeze_list: ret < 0 -> qmp_guest_fsfreeze_thaw(NULL) runs the thaw hook; PVE thaws again."""
    root = machine(tmp_path, conf="[general]\nfsfreeze-hook=/etc/qemu/h\n")
    write(root, "/etc/qemu/h", tracing(root / "record"))
    result = cycle(root, Rec(root / "record", freeze=121), host_tool=host)
    assert (result.status, result.outcome) == (status, "FREEZE_FAILED")
    assert record(root / "record") == steps


def test_snapshot_fails_still_thaws(tmp_path: Path) -> None:
    """libvirt cleanup: thaw is sent after a failed snapshot; the thaw hook runs; no snapshot."""
    root = machine(tmp_path)
    write(root, HOOK, tracing(root / "record"))
    result = cycle(root, Rec(root / "record", snap=False))
    assert (result.status, result.outcome) == (NO_SNAPSHOT, "SNAPSHOT_FAILED")
    assert record(root / "record")[-2:] == ["FITHAW", "fsfreeze-hook thaw"]


@pytest.mark.parametrize(
    ("host", "status"), [(hosts.LIBVIRT, NO_SNAPSHOT), (hosts.PROXMOX, APPLICATION)]
)
def test_thaw_hook_fails(tmp_path: Path, host: str, status: int, record_property) -> None:
    """qmp_guest_fsfreeze_thaw returns the thaw hook's error; libvirt fails the call, PVE logs."""
    root = machine(tmp_path)
    write(root, HOOK, tracing(root / "record", '[ "$1" = thaw ] && exit 6; exit 0'))
    result = cycle(root, host_tool=host)
    record_property("expected", f"{status} THAW_HOOK_FAILED, snapshot taken, FS thawed first")
    record_property("got", f"{result.status} {result.outcome} {record(root / 'record')}")
    assert (result.status, result.outcome) == (status, "THAW_HOOK_FAILED")
    assert record(root / "record")[-2:] == ["FITHAW", "fsfreeze-hook thaw"]
    assert result.snapshot_taken


def test_wrapper_hides_failure(tmp_path: Path, record_property) -> None:
    """fsfreeze-hook ends with exit 0: a failing script is logged, the next runs, freeze goes on."""
    root = machine(tmp_path)
    write(root, f"{D}/1-fails", tracing(root / "record", "exit 7"))
    write(root, f"{D}/2-ok", tracing(root / "record"))
    result = cycle(root)
    record_property("expected", "APPLICATION HOOK_FAILURE_HIDDEN, 2-ok still runs")
    record_property("got", f"{result.status} {result.outcome}")
    assert (result.status, result.outcome) == (APPLICATION, "HOOK_FAILURE_HIDDEN")
    assert record(root / "record")[:3] == ["1-fails freeze", "2-ok freeze", "FIFREEZE"]
    assert "exit status 7" in result.findings[-1]["message"]
    assert result.pre is not None and result.pre.exit_code == 7


def test_freeze_ended_early(tmp_path: Path) -> None:
    """The harness's guard thawed first: qga's FITHAW finds nothing frozen, runs the thaw hook."""
    root = machine(tmp_path)
    write(root, HOOK, tracing(root / "record"))
    result = cycle(root, Rec(root / "record", thaw=2))
    assert (result.status, result.outcome) == (NOT_QUIESCED, "THAWED_EARLY")
    assert record(root / "record")[-1] == "fsfreeze-hook thaw"


def test_qemu_10_wrapper_bad_substitution(tmp_path: Path, record_property) -> None:
    """QEMU 10.0 fsfreeze-hook: no log file -> syslog -> ${PIPESTATUS[0]} stops dash (status 2)."""
    root = machine(tmp_path)
    write(root, f"{D}/1", tracing(root / "record"))
    write(root, f"{D}/2", tracing(root / "record"))
    first = cycle(root, agent_version=agent.QEMU_10_0)
    steps = record(root / "record")
    (root / "record").unlink()
    second = cycle(root, agent_version=agent.QEMU_10_0)
    record_property(
        "expected", "1st: only script 1, FREEZE_HOOK_FAILED (Bad substitution); 2nd: QUIESCED"
    )
    record_property("got", f"{first.outcome} {steps}; {second.outcome}")
    assert (first.status, first.outcome, steps) == (NO_SNAPSHOT, "FREEZE_HOOK_FAILED", ["1 freeze"])
    assert "Bad substitution" in first.message
    assert checks.WRAPPER_BAD_SUBSTITUTION in names(first)
    assert second.outcome == "QUIESCED"


def test_7_2_wrapper_without_log_dir(tmp_path: Path) -> None:
    """dash: a failed >>$LOGFILE redirection skips the command (status 2); the wrapper exits 0."""
    root = machine(tmp_path, log_dir=False)
    write(root, f"{D}/a", tracing(root / "record"))
    result = cycle(root)
    assert result.outcome == "HOOK_FAILURE_HIDDEN"
    assert record(root / "record") == ["FIFREEZE", "snapshot", "FITHAW"]


def test_pacing_changes_nothing(tmp_path: Path) -> None:
    """qemu-ga and libvirt have no coded delay: FAITHFUL and PROMPT run the same steps."""
    root = machine(tmp_path)
    write(root, HOOK, tracing(root / "record"))
    engine = QemuGaEngine(hook_bound_s=BOUND)
    for pacing in (FAITHFUL, PROMPT):
        fake = Rec(root / "record")
        assert (
            engine.run_cycle(root, freezer=fake, snapshotter=fake, pacing=pacing).outcome
            == "QUIESCED"
        )
    assert record(root / "record")[:5] == record(root / "record")[5:]


# --------------------------------------------------------------------------------------
# Hosting and the registry
# --------------------------------------------------------------------------------------


def test_hosting_hook_and_generated_config(record_property) -> None:
    """A hook goes to /etc/qemu/fsfreeze-hook.d/<name>; with no config a minimal one is written."""
    hosting = QemuGaEngine().host(Given(frozenset({"hook"}), hook_name="postgres.sh"))
    got = [(p.role, p.location) for p in hosting.placements]
    record_property(
        "expected", "hook -> /etc/qemu/fsfreeze-hook.d/postgres.sh; qemu-ga.conf generated"
    )
    record_property("got", str(got))
    assert got == [("hook", "/etc/qemu/fsfreeze-hook.d/postgres.sh")]
    (gen,) = hosting.generated
    assert gen.location == "/etc/qemu/qemu-ga.conf"
    assert gen.content == b"[general]\nfsfreeze-hook=/etc/qemu/fsfreeze-hook\n"
    assert gen.mode == 0o644 and "no options" in gen.why
    assert "freeze" in hosting.calls and "thaw" in hosting.calls


def test_hosting_with_config() -> None:
    """A given config goes to /etc/qemu/qemu-ga.conf; the hook next to the path it names."""
    given = Given(
        frozenset({"hook", "config"}),
        config=b"[general]\nfsfreeze-hook=/usr/local/qga/hook\n",
        hook_name="db",
    )
    hosting = QemuGaEngine().host(given)
    assert [(p.role, p.location) for p in hosting.placements] == [
        ("config", "/etc/qemu/qemu-ga.conf"),
        ("hook", "/usr/local/qga/fsfreeze-hook.d/db"),
    ]
    assert hosting.generated == ()


def test_hosting_a_pair_through_a_dispatcher(tmp_path: Path) -> None:
    """qemu-ga calls one hook with freeze|thaw: a pre/post pair is hosted by the smallest
    dispatcher a user must write in fsfreeze-hook.d, which execs the pre-script on freeze
    and the post-script on thaw; half a pair is refused."""
    from pytest_vmsnap.framework.qemu_ga.engine import PAIR_HOOK, PAIR_POST, PAIR_PRE

    hosting = QemuGaEngine().host(Given(frozenset({"pre", "post"})))
    assert [(p.role, p.location) for p in hosting.placements] == [
        ("pre", PAIR_PRE),
        ("post", PAIR_POST),
    ]
    dispatcher = next(g for g in hosting.generated if g.location.endswith(PAIR_HOOK))
    assert dispatcher.mode == 0o755
    script = tmp_path / "d"
    script.write_bytes(dispatcher.content)
    text = script.read_text()
    assert f"freeze) exec {PAIR_PRE}" in text and f"thaw) exec {PAIR_POST}" in text
    half = QemuGaEngine().host(Given(frozenset({"pre"})))
    assert not half.hosted and "freeze" in half.refused and "thaw" in half.refused


def test_registry() -> None:
    """engines.get('qemu-ga') builds this engine (QEMU 7.2, libvirt, 600 s)."""
    engine = engines.get("qemu-ga")
    assert isinstance(engine, QemuGaEngine)
    assert (engine.name, engine.agent_version, engine.host_tool) == ("qemu-ga", "7.2", "libvirt")


def test_precheck_clean(tmp_path: Path) -> None:
    """A machine with the config and an executable .d script: the precheck has nothing to say."""
    root = machine(tmp_path)
    write(root, f"{D}/a", "#!/bin/sh\n")
    assert QemuGaEngine().precheck(root) == []


def test_dangling_symlink_hook(tmp_path: Path) -> None:
    """QEMU 7.2 access(X_OK) follows the link: a dangling hook link is ENOENT, not EACCES."""
    root = machine(tmp_path)
    (root / "etc/qemu").mkdir(parents=True, exist_ok=True)
    (root / HOOK.lstrip("/")).symlink_to("/nonexistent/hook")
    result = cycle(root)
    assert f"can't access fsfreeze hook '{HOOK}': No such file or directory" in result.message
