"""Conformance of the GCP guest-flush engine (GoogleCloudPlatform/guest-agent, one test per fact).

Each case builds a machine root in ``tmp_path`` with ``/etc/default/instance_configs.cfg`` and
``/etc/google/snapshots/{pre,post}.sh`` as tiny real ``sh`` scripts, and records the
snapshotter's and the freezer's calls in one event list. Timeouts of the agent's own length use
a fake clock and a fake process that never ends (no real waiting); the cases about output pipes
held open by a background process use real processes and one-second timeouts.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap.framework import engines
from pytest_vmsnap.framework.engine import EVENTS, Given
from pytest_vmsnap.framework.gcp import codes, config, discovery
from pytest_vmsnap.framework.gcp.engine import DEFAULT_DISKS, MINIMAL_CONFIG, GcpEngine, make
from pytest_vmsnap.framework.gcp.environment import CWD, SCRIPT_ENV, agent_spawn
from pytest_vmsnap.framework.interfaces import FreezeResult, SnapshotResult, ThawResult
from pytest_vmsnap.framework.outcome import APPLICATION, NO_SNAPSHOT
from pytest_vmsnap.framework.scripts import FAITHFUL, PROMPT

OK = "#!/bin/sh\nexit 0\n"
NO_SUCH_PID = 4_194_305  # above the largest possible pid_max: never a real process


# --- helpers -----------------------------------------------------------------------------------


class Recorder:
    """A freezer and a snapshotter that record their calls into one event list."""

    real = True

    def __init__(self, events: list[str], snapshot_ok: bool = True) -> None:
        self.events, self.snapshot_ok = events, snapshot_ok

    def freeze(self) -> FreezeResult:
        self.events.append("FREEZE")
        return FreezeResult(0)

    def thaw(self) -> ThawResult:
        self.events.append("THAW")
        return ThawResult(0)

    def snapshot(self) -> SnapshotResult:
        self.events.append("SNAPSHOT")
        if self.snapshot_ok:
            return SnapshotResult(0, True, "fake", message="taken")
        return SnapshotResult(1, False, "fake", message="disk busy")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeProcess:
    """A script that ends with ``code`` when the fake clock reaches ``exit_at`` (or is killed)."""

    def __init__(self, clock: FakeClock, exit_at: float = math.inf, code: int = 0) -> None:
        self.clock, self.exit_at, self.code = clock, exit_at, code
        self.pid = NO_SUCH_PID
        self.returncode: int | None = None
        self.stdout = self.stderr = None
        self.killed_at: float | None = None

    def poll(self) -> int | None:
        if self.returncode is None and self.clock.now >= self.exit_at:
            self.returncode = self.code
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        raise AssertionError("the runner must not block on a fake process")

    def kill(self) -> None:
        self.killed_at = self.clock.now
        self.returncode = -signal.SIGKILL


def machine(
    tmp_path: Path,
    cfg: str | None = "[Snapshots]\nenabled = true\n",
    pre: str | None = OK,
    post: str | None = OK,
) -> Path:
    """A machine root with the config and the two scripts (None: left out)."""
    if cfg is not None:
        write(tmp_path, config.CONFIG_PATH, cfg, 0o644)
    if pre is not None:
        write(tmp_path, discovery.PRE, pre, 0o755)
    if post is not None:
        write(tmp_path, discovery.POST, post, 0o755)
    return tmp_path


def write(root: Path, location: str, text: str, mode: int) -> Path:
    path = root / location.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def cycle(root: Path, events: list[str] | None = None, **kwargs: Any) -> Any:
    events = events if events is not None else []
    rec = kwargs.pop("recorder", None) or Recorder(events)
    engine = kwargs.pop("engine", None) or GcpEngine(hang_bound_s=kwargs.pop("bound", 5.0))
    return engine.run_cycle(
        root, freezer=rec, snapshotter=rec, observer=events.append, pacing=PROMPT, **kwargs
    )


def fake_spawn(clock: FakeClock, ends: dict[str, tuple[float, int]]) -> Any:
    """A spawn whose scripts end (at fake time, with a code) as ``ends`` says, by file name."""
    made: dict[str, FakeProcess] = {}

    def spawn(argv: Sequence[str]) -> FakeProcess:
        name = Path(argv[0]).name
        at, code = ends.get(name, (0.0, 0))
        made[name] = FakeProcess(clock, clock.now + at, code)
        return made[name]

    spawn.made = made  # type: ignore[attr-defined]
    return spawn


def kill_left(result: Any) -> None:
    """End every process a case left behind, by pid."""
    for call in result.calls:
        for pid in call.result.left_running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# --- config ------------------------------------------------------------------------------------


def test_config_defaults_without_file(tmp_path: Path, record_property: Any) -> None:
    """cfg.go defaultConfig: without any config file, [Snapshots] enabled is false and
    timeout_in_seconds is 60."""
    cfg = config.load(tmp_path)
    record_property("expected", "enabled=False timeout=60 read=()")
    record_property(
        "got", f"enabled={cfg.enabled} timeout={cfg.timeout_in_seconds} read={cfg.read}"
    )
    assert (cfg.enabled, cfg.timeout_in_seconds, cfg.read) == (False, 60, ())
    assert cfg.source("enabled") == "built-in default"


def test_config_minimal_enables(tmp_path: Path) -> None:
    """cfg.go: '[Snapshots] enabled = true' alone turns the listener on with the 60 s default."""
    machine(tmp_path)
    cfg = config.load(tmp_path)
    assert cfg.enabled and cfg.timeout_in_seconds == 60 and cfg.timeout_s == 60.0
    assert cfg.read == (config.CONFIG_PATH,)


def test_config_names_case_insensitive(tmp_path: Path) -> None:
    """cfg.Load uses ini.LoadOptions{Insensitive: true}: section and key names in any case."""
    machine(tmp_path, "[SNAPSHOTS]\nEnabled = true\nTIMEOUT_IN_SECONDS = 5\n")
    cfg = config.load(tmp_path)
    assert cfg.enabled and cfg.timeout_in_seconds == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("True", True),
        ("yes", True),
        ("on", True),
        ("1", True),
        ("t", True),
        ("y", True),
        ("false", False),
        ("off", False),
        ("tRuE", False),
        ("yes please", False),
        ("", False),
        ("2", False),
    ],
)
def test_config_enabled_bool_words(
    tmp_path: Path, record_property: Any, text: str, expected: bool
) -> None:
    """go-ini parseBool (key.go) decides; MapTo drops any other word and the field stays false
    (Go's zero value), never the default."""
    machine(tmp_path, f"[Snapshots]\nenabled = {text}\n")
    cfg = config.load(tmp_path)
    record_property("expected", f"enabled={expected}")
    record_property("got", f"enabled={cfg.enabled}")
    assert cfg.enabled is expected
    valid = text in {"true", "True", "yes", "on", "1", "t", "y", "false", "off"}
    assert bool(cfg.ignored) is (not valid)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30),
        ("+30", 30),
        ("0x1e", 30),
        ("036", 30),  # a leading 0 is octal in strconv.ParseInt base 0
        ("0o36", 30),
        ("0b11110", 30),
        ("3_0", 30),
        ("-5", -5),
        ("60s", 0),
        ("1m", 0),
        ("abc", 0),
        ("08", 0),
        ("", 0),
        ("30.5", 0),
        ("3__0", 0),
        ("99999999999999999999", 0),
    ],
)
def test_config_timeout_int_parsing(
    tmp_path: Path, record_property: Any, text: str, seconds: int
) -> None:
    """TimeoutInSeconds is an int mapped by go-ini (strconv.ParseInt base 0); text it cannot
    parse leaves 0, not the default 60."""
    machine(tmp_path, f"[Snapshots]\nenabled = true\ntimeout_in_seconds = {text}\n")
    cfg = config.load(tmp_path)
    record_property("expected", f"timeout_in_seconds={seconds}")
    record_property("got", f"timeout_in_seconds={cfg.timeout_in_seconds}")
    assert cfg.timeout_in_seconds == seconds


def test_config_timeout_duration_wraps(tmp_path: Path) -> None:
    """snapshot_listener.go: time.Duration(timeoutInSeconds) * time.Second is int64 and wraps."""
    machine(tmp_path, "[Snapshots]\nenabled = true\ntimeout_in_seconds = 9223372037\n")
    cfg = config.load(tmp_path)
    assert cfg.timeout_ns < 0


@pytest.mark.parametrize(
    ("value", "enabled"),
    [
        ("true # on", True),
        ("true;on", True),
        ('"true"', True),
        ("'true'", True),
        ('"true', False),
        ("tr\\\n  ue", True),
    ],
)
def test_config_value_syntax(tmp_path: Path, value: str, enabled: bool) -> None:
    """go-ini readValue: inline comments after # or ;, surrounding quotes stripped, a trailing
    backslash joins the next line."""
    machine(tmp_path, f"[Snapshots]\nenabled = {value}\n")
    assert config.load(tmp_path).enabled is enabled


def test_config_colon_delimiter_bom_crlf(tmp_path: Path) -> None:
    """go-ini: ':' separates like '=', a UTF-8 BOM is skipped, CRLF lines read as LF ones."""
    path = tmp_path / config.CONFIG_PATH.lstrip("/")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xef\xbb\xbf[Snapshots]\r\nenabled: true\r\ntimeout_in_seconds=7\r\n")
    cfg = config.load(tmp_path)
    assert cfg.enabled and cfg.timeout_in_seconds == 7


def test_config_spaced_section_is_another(tmp_path: Path) -> None:
    """go-ini keeps the section name between the brackets as written: '[ Snapshots ]' is not
    [Snapshots], so snapshots stay off."""
    machine(tmp_path, "[ Snapshots ]\nenabled = true\n")
    assert not config.load(tmp_path).enabled


@pytest.mark.parametrize(
    ("files", "enabled", "timeout", "source"),
    [
        ({"": "enabled = true", ".distro": "enabled = false"}, False, 60, ".distro"),
        ({"": "enabled = false", ".template": "enabled = true"}, True, 60, ".template"),
        ({".distro": "enabled = true", ".template": "timeout_in_seconds = 9"}, True, 9, ".distro"),
        (
            {"": "enabled = true\ntimeout_in_seconds = 5", ".distro": "timeout_in_seconds = 6"},
            True,
            6,
            "",
        ),
    ],
)
def test_config_layering_later_file_wins(
    tmp_path: Path,
    record_property: Any,
    files: dict[str, str],
    enabled: bool,
    timeout: int,
    source: str,
) -> None:
    """cfg.go defaultDataSources: defaults, instance_configs.cfg, .distro, .template, read in
    that order by go-ini, where a later value replaces an earlier one (so .distro and .template
    override the user's file, whatever the README says)."""
    for suffix, body in files.items():
        write(tmp_path, config.CONFIG_PATH + suffix, f"[Snapshots]\n{body}\n", 0o644)
    cfg = config.load(tmp_path)
    record_property("expected", f"enabled={enabled} timeout={timeout}")
    record_property("got", f"enabled={cfg.enabled} timeout={cfg.timeout_in_seconds}")
    assert (cfg.enabled, cfg.timeout_in_seconds) == (enabled, timeout)
    assert cfg.source("enabled") == config.CONFIG_PATH + source


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[Snapshots]\nenabled\n", "key-value delimiter not found: enabled"),
        ("[Snapshots\nenabled = true\n", "unclosed section: [Snapshots"),
        ("[]\nenabled = true\n", "empty section name"),
        ("[Snapshots]\n= true\n", "empty key name: = true"),
        ('[Snapshots]\nenabled = """true\n', "missing closing key quote"),
    ],
)
def test_config_parse_error_stops_agent(
    tmp_path: Path, record_property: Any, text: str, words: str
) -> None:
    """cfg.Load fails on a go-ini parse error and main.go exits 1: CONFIG_LOAD_FAILED, no
    script, no snapshot."""
    root = machine(tmp_path, text)
    with pytest.raises(config.ConfigError) as err:
        config.load(root)
    assert words in str(err.value)
    assert str(err.value).startswith("Failed to load configuration: failed to load configuration:")
    events: list[str] = []
    result = cycle(root, events)
    record_property("expected", f"{codes.CONFIG_LOAD_FAILED}, no call, no snapshot")
    record_property("got", f"{result.outcome}, {len(result.calls)} calls, {events}")
    assert (result.status, result.outcome) == (NO_SNAPSHOT, codes.CONFIG_LOAD_FAILED)
    assert result.calls == [] and events == ["precheck_end"]


def test_config_directory_fails_missing_or_dangling_skipped(tmp_path: Path) -> None:
    """go-ini Loose: a config file that does not exist (or a dangling link) is skipped; one that
    cannot be read (a directory) fails Load."""
    link = tmp_path / (config.CONFIG_PATH + ".distro").lstrip("/")
    link.parent.mkdir(parents=True)
    link.symlink_to(tmp_path / "nowhere")
    assert not config.load(tmp_path).enabled
    (tmp_path / config.CONFIG_PATH.lstrip("/")).mkdir()
    with pytest.raises(config.ConfigError, match="is a directory"):
        config.load(tmp_path)


# --- discovery and the calling convention ------------------------------------------------------


def test_scripts_fixed_paths() -> None:
    """snapshot_listener.go scriptsDir: /etc/google/snapshots/pre.sh and post.sh, one each."""
    assert (discovery.PRE, discovery.POST) == (
        "/etc/google/snapshots/pre.sh",
        "/etc/google/snapshots/post.sh",
    )


def test_argv_is_path_and_disk_list(tmp_path: Path, record_property: Any) -> None:
    """runScript: run.WithOutputTimeout(ctx, timeout, path, disks): the script itself, executed
    directly, with the request's disk list as its one argument (default here: 0/1)."""
    script = '#!/bin/sh\necho "$0|$#|$*"\n'
    root = machine(tmp_path, pre=script, post=script)
    result = cycle(root)
    got = [c.result.stdout.text().strip() for c in result.calls]
    pre = str(root / "etc/google/snapshots/pre.sh")
    record_property("expected", f"{pre}|1|{DEFAULT_DISKS}")
    record_property("got", got[0])
    assert got == [f"{pre}|1|0/1", f"{pre[:-6]}post.sh|1|0/1"]
    assert next(c.result.argv for c in result.calls) == [pre, "0/1"]
    other = cycle(root, engine=GcpEngine(disks="1/2,3/4"))
    assert other.calls[0].result.stdout.text().strip().endswith("|1|1/2,3/4")


def test_environment_and_cwd(tmp_path: Path, record_property: Any) -> None:
    """google-guest-agent.service has no User=, Environment= or WorkingDirectory=, and the agent
    passes its own environment: systemd's variables only (no HOME), directory /, stdin
    /dev/null; the harness's extra variables are added."""
    script = "#!/bin/sh\npwd\nenv\nreadlink /proc/self/fd/0 >&2\n"
    root = machine(tmp_path, pre=script)
    result = cycle(root, spawn=agent_spawn({"EXTRA": "1"}))
    out = result.calls[0].result.stdout.text().splitlines()
    env = dict(line.split("=", 1) for line in out[1:] if "=" in line)
    env.pop("PWD", None)  # sh sets it
    env.pop("SHLVL", None)
    expected = {**SCRIPT_ENV, "EXTRA": "1"}
    record_property("expected", f"cwd {CWD}, keys {[*sorted(expected), 'SYSTEMD_EXEC_PID']}")
    record_property("got", f"cwd {out[0]}, keys {sorted(env)}")
    assert out[0] == "/"
    assert "HOME" not in env and "USER" not in env
    assert {k: env[k] for k in expected} == expected
    assert set(env) == set(expected) | {"SYSTEMD_EXEC_PID"}
    assert result.calls[0].result.stderr.text().strip() == "/dev/null"


def test_no_shebang_is_unhandled_error(tmp_path: Path, record_property: Any) -> None:
    """Go's exec has no shell fallback: a script without '#!' fails with 'exec format error',
    exit code -1, UNHANDLED_SCRIPT_ERROR; no snapshot, post.sh not run."""
    events: list[str] = []
    root = machine(tmp_path, pre="echo no shebang\nexit 0\n")
    result = cycle(root, events)
    call = result.calls[0].result
    record_property("expected", "UNHANDLED_SCRIPT_ERROR, exec format error, no snapshot")
    record_property("got", f"{result.outcome}, {call.start_error}, {events}")
    assert result.outcome == "UNHANDLED_SCRIPT_ERROR" and result.status == NO_SNAPSHOT
    assert "exec format error" in call.start_error and not call.ran
    assert "SNAPSHOT" not in events and [c.phase for c in result.calls] == ["pre"]
    assert "return code -1" in result.message


def test_no_exec_bit_is_unhandled_error(tmp_path: Path, record_property: Any) -> None:
    """No owner/mode check of the agent's own; execve refuses a file without an exec bit
    ('permission denied'): UNHANDLED_SCRIPT_ERROR."""
    root = machine(tmp_path)
    (root / "etc/google/snapshots/pre.sh").chmod(0o644)
    result = cycle(root)
    record_property("expected", "UNHANDLED_SCRIPT_ERROR (permission denied)")
    record_property("got", f"{result.outcome} ({result.calls[0].result.start_error})")
    assert result.outcome == "UNHANDLED_SCRIPT_ERROR"
    assert "permission denied" in result.calls[0].result.start_error


def test_mode_0700_any_owner_runs(tmp_path: Path) -> None:
    """The agent checks neither owner nor group/other bits: a world-writable script runs."""
    root = machine(tmp_path)
    (root / "etc/google/snapshots/pre.sh").chmod(0o777)
    assert cycle(root).outcome == "NO_ERROR"


@pytest.mark.parametrize("how", ["missing", "dangling-link"])
def test_pre_missing_is_script_not_found(tmp_path: Path, record_property: Any, how: str) -> None:
    """runScript: os.IsNotExist(os.Stat(path)) -> SCRIPT_NOT_FOUND (return code -1); no
    snapshot; post.sh not run (host-side, conservative)."""
    events: list[str] = []
    root = machine(tmp_path, pre=None)
    if how == "dangling-link":
        (root / "etc/google/snapshots/pre.sh").symlink_to(root / "gone.sh")
    result = cycle(root, events)
    record_property("expected", "SCRIPT_NOT_FOUND, status 2, calls [pre]")
    record_property(
        "got", f"{result.outcome}, status {result.status}, calls {[c.phase for c in result.calls]}"
    )
    assert (result.outcome, result.status) == ("SCRIPT_NOT_FOUND", NO_SNAPSHOT)
    assert [c.phase for c in result.calls] == ["pre"] and not result.calls[0].result.ran
    assert result.findings[0]["code"] == codes.SCRIPT_NOT_FOUND
    assert "SNAPSHOT" not in events and "post.sh was not run" in result.message


def test_scripts_dir_created_0700(tmp_path: Path) -> None:
    """startSnapshotListener: os.MkdirAll(scriptsDir, 0700) when it does not exist (parents
    too)."""
    root = machine(tmp_path, pre=None, post=None)
    result = cycle(root)
    for d in ("etc/google", "etc/google/snapshots"):
        assert stat.S_IMODE((root / d).stat().st_mode) == 0o700
    assert result.outcome == "SCRIPT_NOT_FOUND"
    assert any("0700" in line for line in result.precheck_log)


# --- the outcome table -------------------------------------------------------------------------


def test_success_row(tmp_path: Path, record_property: Any) -> None:
    """pre NO_ERROR, snapshot, post NO_ERROR: application status, outcome NO_ERROR; the events
    in EVENTS order without any freeze event; the freezer is never called."""
    events: list[str] = []
    result = cycle(machine(tmp_path), events)
    record_property("expected", "status 0 NO_ERROR; pre, SNAPSHOT, post; no FREEZE/THAW")
    record_property("got", f"status {result.status} {result.outcome}; {events}")
    assert (result.status, result.outcome) == (APPLICATION, "NO_ERROR")
    assert events == [
        "precheck_end",
        "pre_start",
        "pre_end",
        "snapshot_start",
        "SNAPSHOT",
        "snapshot_end",
        "post_start",
        "post_end",
    ]
    order = [e for e in events if e in EVENTS]
    assert order == sorted(order, key=EVENTS.index)
    assert result.snapshot_taken and result.consistency == "application"
    assert not result.freezes and not result.froze
    d = result.to_dict()
    assert d["framework"] == "gcp" and d["freeze"]["enabled"] is False
    assert [p["phase"] for p in d["timeline"]] == ["precheck", "pre", "snapshot", "post"]


@pytest.mark.parametrize(
    ("pre", "post", "outcome", "calls", "snapshots", "taken"),
    [
        ("exit 3", "exit 0", "UNHANDLED_SCRIPT_ERROR", ["pre"], 0, False),
        ("exit 124", "exit 0", "SCRIPT_TIMED_OUT", ["pre"], 0, False),
        ("kill -9 $$", "exit 0", "UNHANDLED_SCRIPT_ERROR", ["pre"], 0, False),
        ("exit 0", "exit 1", "UNHANDLED_SCRIPT_ERROR", ["pre", "post"], 1, False),
        ("exit 0", "exit 124", "SCRIPT_TIMED_OUT", ["pre", "post"], 1, False),
        ("exit 0", "exit 0", "NO_ERROR", ["pre", "post"], 1, True),
    ],
)
def test_outcome_rows(
    tmp_path: Path,
    record_property: Any,
    pre: str,
    post: str,
    outcome: str,
    calls: list[str],
    snapshots: int,
    taken: bool,
) -> None:
    """runScript: exit 0 NO_ERROR, exactly 124 SCRIPT_TIMED_OUT (even from the script itself),
    any other non-zero or death by signal (-1) UNHANDLED_SCRIPT_ERROR; the docs: no snapshot on
    a script error or timeout (pre: not taken, post not run; post: the snapshot discarded)."""
    events: list[str] = []
    root = machine(tmp_path, pre=f"#!/bin/sh\n{pre}\n", post=f"#!/bin/sh\n{post}\n")
    result = cycle(root, events)
    record_property("expected", f"{outcome}, calls {calls}, snapshot taken {taken}")
    record_property(
        "got",
        f"{result.outcome}, calls {[c.phase for c in result.calls]}, "
        f"snapshot taken {result.snapshot_taken}",
    )
    assert result.outcome == outcome
    assert [c.phase for c in result.calls] == calls
    assert events.count("SNAPSHOT") == snapshots
    assert result.snapshot_taken is taken
    assert result.status == (APPLICATION if taken else NO_SNAPSHOT)
    if pre == "exit 124":
        assert "exited 124 itself" in result.message
        assert not result.calls[0].result.timed_out  # the deadline never passed
    if pre.startswith("kill"):
        assert "killed by signal 9" in result.message
        assert result.calls[0].result.exit_code == -1
    if snapshots and not taken:
        assert result.snapshot is not None and result.snapshot.detail["captured_then_discarded"]
        assert "treated as not created" in result.message


def test_pre_timeout_kills_script_alone(tmp_path: Path, record_property: Any) -> None:
    """WithOutputTimeout: at the deadline (timeout_in_seconds, default 60) the context kills
    the script (SIGKILL, os.Process.Kill) and the exit code becomes 124: SCRIPT_TIMED_OUT."""
    clock = FakeClock()
    spawn = fake_spawn(clock, {"pre.sh": (math.inf, 0)})
    events: list[str] = []
    result = cycle(machine(tmp_path), events, clock=clock, spawn=spawn)
    proc = spawn.made["pre.sh"]
    record_property("expected", "killed at 60 s, SCRIPT_TIMED_OUT, no snapshot")
    record_property(
        "got", f"killed at {proc.killed_at} s, {result.outcome}, {events.count('SNAPSHOT')}"
    )
    assert proc.killed_at == pytest.approx(60.0, abs=0.05)
    assert result.outcome == "SCRIPT_TIMED_OUT" and result.status == NO_SNAPSHOT
    assert result.calls[0].result.exit_code == 124 and result.calls[0].result.timed_out
    assert "SNAPSHOT" not in events and "killed" in result.message


def test_timeout_from_config(tmp_path: Path) -> None:
    """timeout_in_seconds sets each script's deadline (here 5 s, fake clock)."""
    clock = FakeClock()
    spawn = fake_spawn(clock, {"pre.sh": (math.inf, 0)})
    root = machine(tmp_path, "[Snapshots]\nenabled = true\ntimeout_in_seconds = 5\n")
    cycle(root, clock=clock, spawn=spawn)
    assert spawn.made["pre.sh"].killed_at == pytest.approx(5.0, abs=0.05)


def test_script_just_inside_timeout(tmp_path: Path) -> None:
    """A script ending before the deadline answers with its own code (fake clock: 59 s of 60)."""
    clock = FakeClock()
    spawn = fake_spawn(clock, {"pre.sh": (59.0, 0), "post.sh": (59.0, 0)})
    result = cycle(machine(tmp_path), clock=clock, spawn=spawn)
    assert result.outcome == "NO_ERROR" and spawn.made["pre.sh"].killed_at is None


def test_post_timeout_discards_snapshot(tmp_path: Path) -> None:
    """A POST_SNAPSHOT timeout: SCRIPT_TIMED_OUT, the snapshot already taken is discarded
    (conservative reading of the docs)."""
    clock = FakeClock()
    spawn = fake_spawn(clock, {"post.sh": (math.inf, 0)})
    events: list[str] = []
    result = cycle(machine(tmp_path), events, clock=clock, spawn=spawn)
    assert result.outcome == "SCRIPT_TIMED_OUT" and events.count("SNAPSHOT") == 1
    assert not result.snapshot_taken and result.status == NO_SNAPSHOT


@pytest.mark.parametrize("value", ["0", "-1", "60s", "abc"])
def test_timeout_not_positive_never_starts(
    tmp_path: Path, record_property: Any, value: str
) -> None:
    """context.WithTimeout with 0 or less is done at once and Cmd.Start refuses to start: the
    exit code is 124 (SCRIPT_TIMED_OUT) and the script never ran (unparsable text is 0)."""
    root = machine(tmp_path, f"[Snapshots]\nenabled = true\ntimeout_in_seconds = {value}\n")
    marker = root / "ran"
    write(root, discovery.PRE, f"#!/bin/sh\ntouch {marker}\n", 0o755)
    result = cycle(root)
    record_property("expected", "SCRIPT_TIMED_OUT, never ran")
    record_property("got", f"{result.outcome}, ran={result.calls[0].result.ran}")
    assert result.outcome == "SCRIPT_TIMED_OUT" and not marker.exists()
    assert "never ran" in result.message


@pytest.mark.parametrize(
    ("cfg", "outcome"),
    [
        (None, codes.SNAPSHOTS_NOT_ENABLED),
        ("[Snapshots]\nenabled = false\n", codes.SNAPSHOTS_NOT_ENABLED),
        ("[Snapshots]\nenabled = yes please\n", codes.SNAPSHOTS_NOT_ENABLED),
        ("[Snapshots]\nenabled\n", codes.CONFIG_LOAD_FAILED),
    ],
)
def test_no_listener_no_script(
    tmp_path: Path, record_property: Any, cfg: str | None, outcome: str
) -> None:
    """instance_setup.go agentInit starts the listener only when Snapshots.Enabled (default
    false); main.go exits on a config that does not load: no script runs, no snapshot."""
    events: list[str] = []
    result = cycle(machine(tmp_path, cfg), events)
    record_property("expected", f"{outcome}, no call, events [precheck_end]")
    record_property("got", f"{result.outcome}, {len(result.calls)} calls, events {events}")
    assert (result.status, result.outcome) == (NO_SNAPSHOT, outcome)
    assert result.calls == [] and events == ["precheck_end"]
    assert result.findings[0]["name"] == outcome


def test_snapshot_failure_runs_post(tmp_path: Path) -> None:
    """A failed snapshot step (the stand-in's): post.sh still runs, no snapshot."""
    events: list[str] = []
    result = cycle(machine(tmp_path), events, recorder=Recorder(events, snapshot_ok=False))
    assert result.outcome == codes.SNAPSHOT_FAILED and result.status == NO_SNAPSHOT
    assert [c.phase for c in result.calls] == ["pre", "post"]


@pytest.mark.parametrize("pacing", [FAITHFUL, PROMPT])
def test_pacing_adds_no_delay(tmp_path: Path, pacing: Any) -> None:
    """No documented or coded delay between the PRE answer, the snapshot and POST: both
    pacings give the same cycle (fake clock: no time passes besides the scripts')."""
    clock = FakeClock()
    spawn = fake_spawn(clock, {"pre.sh": (1.0, 0), "post.sh": (1.0, 0)})
    rec = Recorder([])
    result = GcpEngine().run_cycle(
        machine(tmp_path), freezer=rec, snapshotter=rec, clock=clock, spawn=spawn, pacing=pacing
    )
    assert result.outcome == "NO_ERROR" and clock.now == pytest.approx(2.0, abs=0.1)


# --- output pipes: real processes --------------------------------------------------------------


def test_background_holding_pipes_past_deadline_is_timeout(
    tmp_path: Path, record_property: Any
) -> None:
    """Cmd.Wait reads stdout/stderr to EOF (WaitDelay 0): a background child holding them keeps
    the agent waiting past the deadline, and the exit code becomes 124 although the script
    exited 0 and was never killed."""
    root = machine(
        tmp_path,
        "[Snapshots]\nenabled = true\ntimeout_in_seconds = 1\n",
        pre="#!/bin/sh\nsleep 1.4 &\nexit 0\n",
    )
    result = cycle(root)
    pre = result.calls[0].result
    record_property("expected", "SCRIPT_TIMED_OUT, not killed, returned after ~1.4 s")
    record_property("got", f"{result.outcome}, returned after {pre.duration_s:.2f} s")
    assert result.outcome == "SCRIPT_TIMED_OUT"
    assert 1.2 < pre.duration_s < 3.0 and pre.exit_code == 124
    assert "kept its stdout/stderr open" in result.message


def test_background_holding_pipes_inside_deadline(tmp_path: Path, record_property: Any) -> None:
    """The same holder ending before the deadline: NO_ERROR, but the agent answered (pre_end)
    only when the holder ended: a PIPES_HELD_OPEN finding."""
    root = machine(
        tmp_path,
        "[Snapshots]\nenabled = true\ntimeout_in_seconds = 5\n",
        pre="#!/bin/sh\nsleep 0.8 &\nexit 0\n",
    )
    result = cycle(root)
    record_property("expected", "NO_ERROR + PIPES_HELD_OPEN")
    record_property("got", f"{result.outcome} + {[f['name'] for f in result.findings]}")
    assert result.outcome == "NO_ERROR"
    assert [f["name"] for f in result.findings] == [codes.PIPES_HELD_OPEN]
    assert result.calls[0].result.duration_s >= 0.7


def test_background_redirected_returns_at_once(tmp_path: Path) -> None:
    """A background process with its output sent away does not hold the agent."""
    pid = tmp_path / "holder.pid"
    root = machine(
        tmp_path, pre=f"#!/bin/sh\nsleep 3 </dev/null >/dev/null 2>&1 &\necho $! >{pid}\n"
    )
    result = cycle(root)
    try:
        assert result.outcome == "NO_ERROR" and not result.findings
        assert result.calls[0].result.duration_s < 1.0
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid.read_text()), signal.SIGKILL)


def test_holder_never_closing_is_no_response(tmp_path: Path, record_property: Any) -> None:
    """Where the pipes never close the real agent never answers: the harness stops at its bound
    (hang_bound_s past the deadline), NO_RESPONSE, no snapshot, post.sh not run."""
    events: list[str] = []
    root = machine(
        tmp_path,
        "[Snapshots]\nenabled = true\ntimeout_in_seconds = 1\n",
        pre="#!/bin/sh\nsleep 30 &\nexit 0\n",
    )
    result = cycle(root, events, bound=0.3)
    try:
        pre = result.calls[0].result
        record_property("expected", "NO_RESPONSE after ~1.3 s, holder left running")
        record_property(
            "got", f"{result.outcome} after {pre.duration_s:.2f} s, left {pre.left_running}"
        )
        assert (result.outcome, result.status) == (codes.NO_RESPONSE, NO_SNAPSHOT)
        assert 1.2 < pre.duration_s < 3.0 and pre.left_running
        assert pre.error_code == codes.SCRIPT_TIMED_OUT and pre.exit_code is None
        assert "SNAPSHOT" not in events and [c.phase for c in result.calls] == ["pre"]
    finally:
        kill_left(result)


def test_timed_out_foreground_child_keeps_agent_waiting(tmp_path: Path) -> None:
    """Kill reaches the script alone: its foreground child lives on with the pipes, and the
    agent answers (124) only when that child ends."""
    root = machine(
        tmp_path,
        "[Snapshots]\nenabled = true\ntimeout_in_seconds = 1\n",
        pre="#!/bin/sh\nsleep 1.5\nexit 0\n",
    )
    result = cycle(root)
    pre = result.calls[0].result
    assert result.outcome == "SCRIPT_TIMED_OUT" and "killed" in result.message
    assert 1.3 < pre.duration_s < 3.0


def test_output_flood_does_not_stall(tmp_path: Path) -> None:
    """The agent reads both pipes into buffers as the script writes: 2 MiB of output does not
    block it (the report keeps head and tail)."""
    root = machine(tmp_path, pre="#!/bin/sh\nhead -c 2097152 /dev/zero\nexit 0\n")
    result = cycle(root)
    pre = result.calls[0].result
    assert result.outcome == "NO_ERROR" and pre.stdout.total == 2 * 1024 * 1024


# --- hosting and the registry ------------------------------------------------------------------


def test_hosting_pair_and_config(record_property: Any) -> None:
    """host(): pre -> /etc/google/snapshots/pre.sh, post -> post.sh, config ->
    /etc/default/instance_configs.cfg; nothing generated when a config is given."""
    hosting = GcpEngine().host(Given(frozenset({"pre", "post", "config"})))
    got = {p.role: p.location for p in hosting.placements}
    record_property("expected", "pre.sh, post.sh, instance_configs.cfg; no generated file")
    record_property("got", f"{got}; {len(hosting.generated)} generated")
    assert got == {
        "pre": discovery.PRE,
        "post": discovery.POST,
        "config": config.CONFIG_PATH,
    }
    assert hosting.hosted and not hosting.generated and "<disks>" in hosting.calls


def test_hosting_generates_minimal_config(tmp_path: Path) -> None:
    """Without a config the harness writes the smallest one a user must: [Snapshots]
    enabled = true (the built-in default is false); it loads as enabled."""
    hosting = GcpEngine().host(Given(frozenset({"pre", "post"})))
    (gen,) = hosting.generated
    assert gen.location == config.CONFIG_PATH and gen.content == MINIMAL_CONFIG
    assert "default is false" in gen.why
    write(tmp_path, gen.location, gen.content.decode(), gen.mode)
    assert config.load(tmp_path).enabled


@pytest.mark.parametrize("roles", [{"hook", "pre", "post"}, {"document"}])
def test_hosting_refuses_a_hook_with_a_pair_and_a_document(roles: set[str]) -> None:
    """GCP has one file per phase and reads no command document: a hook beside a pair, or a
    document, is refused."""
    hosting = GcpEngine().host(Given(frozenset(roles), hook_name="hook.sh"))
    assert not hosting.hosted and hosting.refused


def test_a_hook_is_called_by_two_one_line_wrappers(tmp_path: Path, record_property: Any) -> None:
    """GCP passes the disk list, never a verb: a hook is hosted by the smallest pre.sh and
    post.sh a user must write, which exec it with freeze and thaw (no snapshot verb of GCP's)."""
    from pytest_vmsnap.framework.gcp.engine import HOOK

    hosting = GcpEngine().host(Given(frozenset({"hook"}), hook_name="50-db.sh"))
    assert [(p.role, p.location) for p in hosting.placements] == [("hook", HOOK)]
    wrappers = {g.location: g.content.decode() for g in hosting.generated if g.mode == 0o755}
    record_property("expected", f"pre.sh: exec {HOOK} freeze; post.sh: exec {HOOK} thaw")
    record_property("got", wrappers)
    assert wrappers == {
        "/etc/google/snapshots/pre.sh": f"#!/bin/sh\nexec {HOOK} freeze\n",
        "/etc/google/snapshots/post.sh": f"#!/bin/sh\nexec {HOOK} thaw\n",
    }
    assert config.CONFIG_PATH in {g.location for g in hosting.generated}


def test_registry_builds_engine() -> None:
    """engines.get('gcp') imports framework.gcp.engine and calls make (profile ignored)."""
    engine = engines.get("gcp", profile="documented")
    assert isinstance(engine, GcpEngine) and engine.name == "gcp"
    assert make() == GcpEngine()


# --- precheck ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "names"),
    [
        ("clean", []),
        ("no-config", [codes.SNAPSHOTS_NOT_ENABLED]),
        ("broken-config", [codes.CONFIG_LOAD_FAILED]),
        ("no-scripts", ["SCRIPT_NOT_FOUND", "SCRIPT_NOT_FOUND"]),
        ("no-exec-bit", ["UNHANDLED_SCRIPT_ERROR"]),
        ("no-shebang", ["UNHANDLED_SCRIPT_ERROR"]),
        ("directory", ["UNHANDLED_SCRIPT_ERROR"]),
        ("timeout-0", ["SCRIPT_TIMED_OUT"]),
    ],
)
def test_precheck(tmp_path: Path, record_property: Any, case: str, names: list[str]) -> None:
    """precheck(): what fails for certain before a script does anything, in the agent's
    terms."""
    cfg: str | None = "[Snapshots]\nenabled = true\n"
    pre: str | None = OK
    post: str | None = OK
    if case == "no-config":
        cfg = None
    elif case == "broken-config":
        cfg = "[Snapshots\n"
    elif case == "no-scripts":
        pre = post = None
    elif case == "no-shebang":
        pre = "exit 0\n"
    elif case == "timeout-0":
        cfg = "[Snapshots]\nenabled = true\ntimeout_in_seconds = 0\n"
    elif case == "directory":
        post = None
    root = machine(tmp_path, cfg, pre, post)
    if case == "no-exec-bit":
        (root / "etc/google/snapshots/post.sh").chmod(0o600)
    if case == "directory":
        (root / "etc/google/snapshots/post.sh").mkdir()
    found = GcpEngine().precheck(root)
    record_property("expected", str(names))
    record_property("got", str([f["name"] for f in found]))
    assert [f["name"] for f in found] == names
    assert all(f["action"] for f in found)


def test_direct_spawn_subprocess_sanity() -> None:
    """The harness's spawner is a real Popen with pipes (no shell): a guard for the cases above."""
    proc = agent_spawn()(["/bin/echo", "x"])
    assert isinstance(proc, subprocess.Popen)
    out, _ = proc.communicate(timeout=5)
    assert out == b"x\n"
