"""Conformance of the script runner (spec section 4).

Behaviour is checked with real ``sh`` processes (PROMPT pacing, poll 1 s, short timeouts);
the timeout arithmetic is checked with a fake clock and fake processes, without real waiting.
Every process a test leaves behind is ended by its exact pid / process group.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap.framework.azure import codes
from pytest_vmsnap.framework.azure.config import PluginConfig, host_watchdog_s, timeout_budget
from pytest_vmsnap.framework.azure.profiles import DOCUMENTED, EXTENSION, Profile
from pytest_vmsnap.framework.azure.runner import release_parked, run_script
from pytest_vmsnap.framework.scripts import (
    FAITHFUL,
    OUTPUT_KEEP,
    PROMPT,
    Output,
    Pacing,
    ScriptResult,
    SystemClock,
    spawn_script,
)

NO_SUCH_PID = 4_194_305  # above the largest possible pid_max (2**22): never a real process


# --------------------------------------------------------------------------------------
# Fakes: a clock whose sleep() advances time at once, a process that exits at a fake time
# --------------------------------------------------------------------------------------


class FakeClock:
    """Monotonic time that only moves when someone sleeps (or waits on a FakeProcess)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeProcess:
    """poll() returns ``code`` once the fake clock has reached ``exit_at``."""

    def __init__(self, clock: FakeClock, exit_at: float, code: int = 0) -> None:
        self.clock = clock
        self.exit_at = exit_at
        self.code = code
        self.pid = NO_SUCH_PID
        self.returncode: int | None = None
        self.stdout = None
        self.stderr = None

    def poll(self) -> int | None:
        if self.returncode is None and self.clock.now >= self.exit_at:
            self.returncode = self.code
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.poll() is not None:
            return self.code
        target = self.exit_at if timeout is None else min(self.exit_at, self.clock.now + timeout)
        self.clock.now = max(self.clock.now, target)
        if self.poll() is None:
            raise subprocess.TimeoutExpired("fake", timeout or 0)
        return self.code


class FakeSpawner:
    """Hands out FakeProcesses from a plan of (seconds until exit, exit code)."""

    def __init__(self, clock: FakeClock, *plan: tuple[float, int]) -> None:
        self.clock = clock
        self.plan = list(plan)
        self.argvs: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> FakeProcess:
        self.argvs.append(list(argv))
        runs_for, code = self.plan.pop(0) if len(self.plan) > 1 else self.plan[0]
        return FakeProcess(self.clock, self.clock.now + runs_for, code)


def fake_run(
    *plan: tuple[float, int],
    timeout_s: float = 10,
    poll_s: int = 3,
    retries: Any = 0,
    profile: Profile = EXTENSION,
    pacing: Pacing = FAITHFUL,
    which: str = "pre",
) -> tuple[ScriptResult, FakeClock, FakeSpawner]:
    clock = FakeClock()
    spawner = FakeSpawner(clock, *plan)
    result = run_script(
        which,
        ["sh", "/fake.sh"],
        timeout_s=timeout_s,
        poll_s=poll_s,
        retries=retries,
        continue_on_failure=True,
        profile=profile,
        clock=clock,
        spawn=spawner,
        pacing=pacing,
    )
    return result, clock, spawner


# --------------------------------------------------------------------------------------
# Real processes: helpers
# --------------------------------------------------------------------------------------


class RecordingSpawn:
    """spawn_script, keeping every Popen so the test can clean up by exact pid."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        proc = spawn_script(argv)
        self.procs.append(proc)
        return proc


@pytest.fixture
def spawned() -> Iterator[RecordingSpawn]:
    rec = RecordingSpawn()
    yield rec
    for proc in rec.procs:
        if proc.poll() is None:
            # process_group=0 in spawn_script: the group id is the script's own pid.
            _kill_group_of(proc.pid)
            proc.wait(timeout=10)


def _kill_group_of(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def script(tmp_path: Path, body: str, name: str = "s.sh") -> str:
    path = tmp_path / name
    path.write_text(body)
    path.chmod(0o700)
    return str(path)


def real_run(
    argv: list[str],
    *,
    timeout_s: float = 10,
    poll_s: int = 1,
    retries: Any = 0,
    profile: Profile = EXTENSION,
    spawn: RecordingSpawn | None = None,
    which: str = "pre",
) -> ScriptResult:
    return run_script(
        which,
        argv,
        timeout_s=timeout_s,
        poll_s=poll_s,
        retries=retries,
        continue_on_failure=False,
        profile=profile,
        spawn=spawn,
        pacing=PROMPT,
    )


# --------------------------------------------------------------------------------------
# 4.4 Timeout arithmetic (fake clock, no real waiting)
# --------------------------------------------------------------------------------------

TIMEOUT_TABLE = [
    (3, 2, 4.0),
    (10, 3, 12.0),
    (30, 3, 30.0),
    (1, 5, 5.0),
    (10, 1, 10.0),
    (7, 5, 10.0),
    (4, 4, 4.0),
    (2.5, 2, 4.0),
    (0.5, 1, 1.0),
    (1800, 3, 1800.0),
    (1800, 4, 1800.0),
    (1799, 5, 1800.0),
    (11, 3, 12.0),
]


@pytest.mark.parametrize(("t", "p", "fires_at"), TIMEOUT_TABLE)
def test_timeout_fires_at_ceil_t_over_p_times_p(
    record_property: Any, t: float, p: int, fires_at: float
) -> None:
    """Sec. 4.4: the loop sleeps P while sleeps < T/P, so the timeout fires after
    ceil(T/P)*P seconds (T=3, P=2 -> 4.0 s); the result is 308 and the script is not waited on
    for longer."""
    result, clock, _ = fake_run((math.inf, 0), timeout_s=t, poll_s=p)
    record_property("expected", f"308 at {fires_at:g} s")
    record_property("got", f"{result.error_code} at {result.duration_s:g} s")
    assert result.timed_out
    assert result.error_code == codes.PRE_TIMEOUT
    assert result.duration_s == fires_at
    assert clock.sleeps == [p] * math.ceil(t / p)
    assert timeout_budget(t, p) == (math.ceil(t / p), fires_at)


def test_post_timeout_is_309() -> None:
    """Sec. 4.4: a timed-out post-script is 309 FailedPrepostPostScriptTimeout."""
    result, _, _ = fake_run((math.inf, 0), timeout_s=3, poll_s=2, which="post")
    assert (result.error_code, result.duration_s) == (codes.POST_TIMEOUT, 4.0)


@pytest.mark.parametrize("t", [0, -5, -0.1])
def test_nonpositive_timeout_fires_at_first_check(t: float) -> None:
    """Sec. 4.4: T <= 0 -> timeout at the very first check (no sleep at all)."""
    result, clock, _ = fake_run((0.001, 0), timeout_s=t, poll_s=3)
    assert result.timed_out and result.duration_s == 0.0
    assert clock.sleeps == []


def test_nonpositive_timeout_but_already_exited() -> None:
    """Sec. 4.4: T <= 0 times out 'unless the process already exited' at the first check."""
    result, _, _ = fake_run((0, 0), timeout_s=0, poll_s=3)
    assert not result.timed_out
    assert (result.error_code, result.exit_code, result.duration_s) == (0, 0, 0.0)


def test_nan_timeout_never_fires() -> None:
    """Sec. 4.4 / config: with T = NaN, sleeps >= T/P is never true: no timeout ever; the
    script's end is seen at the next poll boundary."""
    result, _, _ = fake_run((100_000, 0), timeout_s=math.nan, poll_s=3)
    assert not result.timed_out
    assert result.error_code == 0
    assert result.duration_s == 100_002.0


def test_exit_exactly_at_the_deadline_is_success() -> None:
    """Sec. 4.4: the process is checked before the timeout test, so a script that has ended
    by the last poll boundary (T=3, P=2, ends at 4.0) succeeds."""
    result, _, _ = fake_run((4.0, 0), timeout_s=3, poll_s=2)
    assert (result.timed_out, result.error_code, result.duration_s) == (False, 0, 4.0)


def test_exit_just_after_the_deadline_times_out() -> None:
    """Sec. 4.4: ending at 4.01 s with T=3, P=2 is a timeout at 4.0 s."""
    result, _, _ = fake_run((4.01, 0), timeout_s=3, poll_s=2)
    assert result.timed_out and result.duration_s == 4.0


@pytest.mark.parametrize(
    ("ends_at", "p", "faithful_seen", "prompt_seen"),
    [(0.5, 3, 3.0, 0.5), (4.5, 3, 6.0, 4.5), (0.2, 1, 1.0, 0.2), (9.9, 5, 10.0, 9.9)],
)
def test_completion_noticed_at_poll_boundary_or_at_once(
    ends_at: float, p: int, faithful_seen: float, prompt_seen: float
) -> None:
    """Sec. 4.4: 'completion is only noticed at poll boundaries' (FAITHFUL: a script ending
    at 0.5 s with P=3 is seen at 3 s); PROMPT pacing notices it at once, same arithmetic."""
    faithful, _, _ = fake_run((ends_at, 0), timeout_s=30, poll_s=p, pacing=FAITHFUL)
    prompt, _, _ = fake_run((ends_at, 0), timeout_s=30, poll_s=p, pacing=PROMPT)
    assert faithful.duration_s == faithful_seen
    assert prompt.duration_s == pytest.approx(prompt_seen)
    assert faithful.error_code == prompt.error_code == 0


def test_prompt_pacing_keeps_the_timeout_arithmetic() -> None:
    """Pacing: PROMPT keeps the ceil(T/P)*P timeout (T=3, P=2 -> 4.0 s)."""
    result, _, _ = fake_run((math.inf, 0), timeout_s=3, poll_s=2, pacing=PROMPT)
    assert result.timed_out and result.duration_s == 4.0


def test_faithful_real_process_is_seen_at_the_poll_boundary() -> None:
    """Sec. 4.4 with a real clock: FAITHFUL sleeps the whole poll period although the
    script ends after 0.2 s (P=1 -> seen at about 1 s); PROMPT sees the end at once."""
    argv = ["sh", "-c", "sleep 0.2"]
    faithful = run_script(
        "pre", argv, timeout_s=5, poll_s=1, retries=0, continue_on_failure=True, pacing=FAITHFUL
    )
    prompt = real_run(argv)
    assert faithful.error_code == prompt.error_code == 0
    assert faithful.duration_s >= 0.99
    assert 0.15 <= prompt.duration_s < 0.7


def test_system_clock_sleep_ignores_nonpositive() -> None:
    """Clock: the real clock's sleep(0) or negative returns at once."""
    clock = SystemClock()
    before = clock.monotonic()
    clock.sleep(0)
    clock.sleep(-1)
    assert clock.monotonic() - before < 0.1


# --------------------------------------------------------------------------------------
# 4.3 Exit codes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "exit_code"),
    [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 2", 2),  # the old 'warning' value, a failure since 8c76b77d
        ("exit 126", 126),
        ("exit 127", 127),
        ("exit 255", 255),
        ("kill -KILL $$", -9),
        ("kill -TERM $$", -15),
    ],
    ids=["0", "1", "2-warning", "126", "127", "255", "SIGKILL", "SIGTERM"],
)
@pytest.mark.parametrize("which", ["pre", "post"])
def test_only_exit_zero_is_success(
    tmp_path: Path, record_property: Any, body: str, exit_code: int, which: str
) -> None:
    """Sec. 4.3: success iff the return code is exactly 0; 1, 2 (old 'warning'), 126, 127
    and negative signal deaths are failures -> 300 (pre) / 301 (post)."""
    result = real_run(["sh", script(tmp_path, body + "\n")], which=which)
    failed = codes.PRE_FAILED if which == "pre" else codes.POST_FAILED
    want = 0 if exit_code == 0 else failed
    record_property("expected", f"exit {exit_code} -> {want}")
    record_property("got", f"exit {result.exit_code} -> {result.error_code}")
    assert result.exit_code == exit_code
    assert result.error_code == (0 if exit_code == 0 else failed)
    assert result.continue_backup is (exit_code == 0)  # 4.6: = continueBackupOnFailure (False)


def test_missing_script_at_run_time_is_a_failure(tmp_path: Path) -> None:
    """Sec. 3 last bullet: a script gone after validation makes sh fail -> 300. (The spec
    says 127; that is bash-as-sh. dash exits 2 "Can't open" — a failure all the same.)"""
    result = real_run(["sh", str(tmp_path / "vanished.sh")])
    assert result.exit_code in (2, 127)
    assert result.error_code == codes.PRE_FAILED


# --------------------------------------------------------------------------------------
# 4.1 Launch: argv, shebang, sh (dash), output
# --------------------------------------------------------------------------------------

ARGS_SCRIPT = 'echo "$#"\nfor a in "$@"; do printf "<%s>\\n" "$a"; done\n'


def test_params_are_separate_verbatim_argv_entries(tmp_path: Path) -> None:
    """Sec. 4.1: argv = ['sh', location] + [str(p) for p in params], no shell: empty strings
    kept, 'a b' stays one argument, no $VAR expansion, true -> 'True', 5 -> '5'."""
    cfg = PluginConfig(
        pre_location=script(tmp_path, ARGS_SCRIPT),
        pre_params=["", "a b", True, 5, "$HOME", "", "*", 1.5, None],
    )
    argv = cfg.argv("pre")
    assert argv is not None
    result = real_run(argv)
    assert result.error_code == 0
    lines = result.stdout.text().splitlines()
    assert lines == [
        "9",
        "<>",
        "<a b>",
        "<True>",
        "<5>",
        "<$HOME>",
        "<>",
        "<*>",
        "<1.5>",
        "<None>",
    ]


def test_template_params_pass_two_empty_arguments(tmp_path: Path) -> None:
    """Sec. 2.2 template: preScriptParams ["", ""] gives the script two empty arguments."""
    argv = PluginConfig(pre_location=script(tmp_path, ARGS_SCRIPT), pre_params=["", ""]).argv("pre")
    assert argv is not None
    assert real_run(argv).stdout.text().splitlines() == ["2", "<>", "<>"]


def test_string_params_are_iterated_char_by_char(tmp_path: Path) -> None:
    """Sec. 2.2 table: a string params value is iterated char by char (each char an arg)."""
    argv = PluginConfig(pre_location=script(tmp_path, ARGS_SCRIPT), pre_params="a b").argv("pre")
    assert argv is not None
    assert real_run(argv).stdout.text().splitlines() == ["3", "<a>", "< >", "<b>"]


@pytest.mark.parametrize("params", [5, None, 1.5, True])
@pytest.mark.parametrize("p", [1, 3, 5])
def test_bad_params_type_is_host_watchdog_without_process(params: Any, p: int) -> None:
    """Sec. 2.2 table / 4.4: a number or null params -> TypeError in the plugin thread ->
    the host watchdog reports 310 after (int(1800/P)+2)*P s; no process is started and
    continueBackup stays True."""
    argv = PluginConfig(pre_location="/x.sh", pre_params=params).argv("pre")
    assert argv is None

    def no_spawn(argv: Sequence[str]) -> Any:
        raise AssertionError("no process may be started")

    clock = FakeClock()
    result = run_script(
        "pre",
        argv,
        timeout_s=10,
        poll_s=p,
        retries=0,
        continue_on_failure=False,
        clock=clock,
        spawn=no_spawn,
    )
    assert (result.error_code, result.watchdog, result.ran) == (
        codes.HOST_PRE_TIMEOUT,
        True,
        False,
    )
    assert result.attempts == 0
    assert result.continue_backup is True
    assert result.duration_s == host_watchdog_s(p) == (int(1800 / p) + 2) * p


@pytest.mark.parametrize("which", ["pre", "post"])
def test_sh_that_cannot_start_is_host_watchdog(which: str) -> None:
    """Sec. 4.1 / 4.4: Popen raising in the plugin thread (no `sh` on the PATH: a pre-script
    removed /usr) kills the thread without a report: the host watchdog's 310/311."""

    def no_sh(argv: Sequence[str]) -> Any:
        raise FileNotFoundError(2, "No such file or directory", "sh")

    result = run_script(
        which,
        ["sh", "/x.sh"],
        timeout_s=10,
        poll_s=3,
        retries=0,
        continue_on_failure=False,
        clock=FakeClock(),
        spawn=no_sh,
    )
    code = codes.HOST_PRE_TIMEOUT if which == "pre" else codes.HOST_POST_TIMEOUT
    assert (result.error_code, result.watchdog, result.ran) == (code, True, False)
    assert result.continue_backup is True
    assert any("FileNotFoundError" in line for line in result.log), result.log


def test_bad_post_params_is_311() -> None:
    """Sec. 2.2 table: postScriptParams a number -> 311 FailedPrepostPluginhostPostTimeout."""
    argv = PluginConfig(post_location="/x.sh", post_params=7).argv("post")
    result = run_script("post", argv, timeout_s=10, poll_s=3, retries=0, continue_on_failure=True)
    assert result.error_code == codes.HOST_POST_TIMEOUT
    assert result.duration_s == pytest.approx(1806.0)


def test_shebang_is_ignored(tmp_path: Path) -> None:
    """Sec. 4.1: the script always runs as `sh <path>`; a #!/usr/bin/python3 line is a
    comment to sh, and shell content runs fine."""
    path = script(tmp_path, "#!/usr/bin/python3\nx=shell\necho ran-by-$x\n")
    result = real_run(["sh", path])
    assert result.error_code == 0
    assert result.stdout.text() == "ran-by-shell\n"


def test_python_script_fails_under_sh(tmp_path: Path) -> None:
    """Sec. 4.1: 'a Python "script" fails' — sh cannot run Python code."""
    path = script(tmp_path, "#!/usr/bin/python3\nimport sys\nprint('hi')\nsys.exit(0)\n")
    result = real_run(["sh", path])
    assert result.error_code == codes.PRE_FAILED


@pytest.mark.skipif(
    os.path.basename(os.path.realpath("/bin/sh")) != "dash", reason="sh is not dash here"
)
def test_bashism_fails_under_dash(tmp_path: Path) -> None:
    """Sec. 4.1: bash-only syntax fails where sh is dash (Debian/Ubuntu): `[[ ]]` is not
    found (exit 127) -> 300."""
    path = script(tmp_path, "#!/bin/bash\n[[ 1 == 1 ]]\n")
    result = real_run(["sh", path])
    assert result.exit_code != 0
    assert result.error_code == codes.PRE_FAILED
    assert "not found" in result.stderr.text()


def test_stdout_and_stderr_are_captured(tmp_path: Path) -> None:
    """Sec. 4.1 (report extension): what the extension leaves unread in its pipes is taken
    for the report — stdout and stderr separately."""
    path = script(tmp_path, "echo to-out\necho to-err >&2\nexit 3\n")
    result = real_run(["sh", path])
    assert result.stdout.text() == "to-out\n"
    assert result.stderr.text() == "to-err\n"
    record = result.to_dict()
    assert record["exit_code"] == 3 and record["output_bytes"] == 14
    assert record["error_code"] == codes.PRE_FAILED


def test_background_child_holding_the_pipe_does_not_block(
    tmp_path: Path, spawned: RecordingSpawn
) -> None:
    """Sec. 4.1: the pipes are never read, so a script that exits while a background child
    (a lock holder) still holds its stdout does not hold up the framework, in either profile.
    """
    pidfile = tmp_path / "child.pid"
    path = script(tmp_path, f'sleep 20 &\necho $! > "{pidfile}"\necho done\n')
    try:
        for profile in (EXTENSION, DOCUMENTED):
            start = time.monotonic()
            result = real_run(["sh", path], profile=profile, spawn=spawned)
            assert time.monotonic() - start < 3
            assert result.error_code == 0
            assert result.stdout.text() == "done\n"
            _kill_pid(int(pidfile.read_text()))
    finally:
        if pidfile.exists():
            _kill_pid(int(pidfile.read_text()))


# --------------------------------------------------------------------------------------
# 4.1 unread pipes: a chatty script stalls under the extension profile
# --------------------------------------------------------------------------------------

MEGABYTE = b"".join(b"%07d\n" % i for i in range(131072))  # 1 MiB, no repeating block


def test_output_beyond_pipe_buffer_stalls_under_extension(
    tmp_path: Path, spawned: RecordingSpawn
) -> None:
    """Sec. 4.1: stdout is a pipe that is never read; a script writing 1 MB blocks once the
    ~64 KiB buffer is full and hits the timeout (308, output_stalled); the first 64 KiB it
    managed to write is kept for the report."""
    data = tmp_path / "mb.txt"
    data.write_bytes(MEGABYTE)
    result = real_run(["sh", script(tmp_path, f'cat "{data}"\n')], timeout_s=1, spawn=spawned)
    assert result.timed_out and result.error_code == codes.PRE_TIMEOUT
    assert result.output_stalled
    release_parked()  # the cycle's end: what the pipe held is read for the report
    assert result.stdout.head == MEGABYTE[:OUTPUT_KEEP]


def test_output_beyond_pipe_buffer_completes_under_documented(tmp_path: Path) -> None:
    """Sec. 14 / profiles: the documented profile drains the output while the script runs,
    so the same 1 MB script completes (head and tail kept, the middle counted)."""
    data = tmp_path / "mb.txt"
    data.write_bytes(MEGABYTE)
    result = real_run(["sh", script(tmp_path, f'cat "{data}"\n')], profile=DOCUMENTED)
    assert (result.error_code, result.timed_out, result.output_stalled) == (0, False, False)
    assert result.stdout.total == len(MEGABYTE)
    assert result.stdout.head == MEGABYTE[:OUTPUT_KEEP]
    assert result.stdout.tail == MEGABYTE[-OUTPUT_KEEP:]
    assert result.stdout.truncated
    assert "bytes not kept" in result.stdout.text()


def test_output_record_keeps_small_output_whole() -> None:
    """Report: output under the head size is kept whole and not marked truncated."""
    out = Output()
    out.add(b"abc")
    assert (out.text(), out.truncated, out.total) == ("abc", False, 3)


def test_output_record_just_over_the_head_has_no_gap() -> None:
    """Report: head + tail hold everything when the output is under 2 x 64 KiB: no marker."""
    out = Output()
    out.add(b"a" * OUTPUT_KEEP + b"tail")
    assert not out.truncated
    assert out.text() == "a" * OUTPUT_KEEP + "tail"


# --------------------------------------------------------------------------------------
# 4.4 no kill on timeout (extension) / kill the group (documented)
# --------------------------------------------------------------------------------------


def test_timed_out_script_keeps_running_under_extension(
    tmp_path: Path, spawned: RecordingSpawn
) -> None:
    """Sec. 4.4: 'On timeout the script is not killed'; it keeps running in the background
    and the result lists its pid."""
    result = real_run(["sh", script(tmp_path, "sleep 20\n")], timeout_s=1, spawn=spawned)
    proc = spawned.procs[0]
    assert result.timed_out and result.error_code == codes.PRE_TIMEOUT
    assert result.continue_backup is False  # = continueBackupOnFailure
    assert result.left_running == [proc.pid]
    assert alive(proc.pid) and proc.poll() is None


def test_timed_out_script_keeps_its_pipes_and_writes_on(
    tmp_path: Path, spawned: RecordingSpawn
) -> None:
    """Errata E1: a timed-out script is not cut off from its pipes (CPython parks its Popen
    until the extension's process exits): it writes after the timeout without SIGPIPE and
    goes on; what it wrote is read when the cycle ends."""
    marker = tmp_path / "went-on"
    body = f'sleep 1.5\necho after the timeout\ntouch "{marker}"\n'
    result = real_run(["sh", script(tmp_path, body)], timeout_s=1, spawn=spawned)
    proc = spawned.procs[0]
    assert result.timed_out and result.left_running == [proc.pid]
    assert proc.wait(timeout=10) == 0  # not killed by SIGPIPE on its echo
    assert marker.exists()
    release_parked()
    assert "after the timeout" in result.stdout.text()


def test_timed_out_script_group_is_killed_under_documented(
    tmp_path: Path, spawned: RecordingSpawn
) -> None:
    """Sec. 14 'Timeout' (docs) / profiles: the documented profile kills the timed-out
    script's whole process group — a child it spawned is gone too."""
    pidfile = tmp_path / "child.pid"
    path = script(tmp_path, f'sleep 20 &\necho $! > "{pidfile}"\nsleep 20\n')
    try:
        result = real_run(["sh", path], timeout_s=1, profile=DOCUMENTED, spawn=spawned)
        proc = spawned.procs[0]
        child = int(pidfile.read_text())
        assert result.timed_out and result.error_code == codes.PRE_TIMEOUT
        assert result.left_running == []
        assert proc.poll() == -signal.SIGKILL
        deadline = time.monotonic() + 5
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(child)
    finally:
        if pidfile.exists():
            _kill_pid(int(pidfile.read_text()))


# --------------------------------------------------------------------------------------
# 4.5 Retries
# --------------------------------------------------------------------------------------

COUNTER_SCRIPT = 'echo run >> "$1"\nexit 1\n'


def test_extension_retries_never_rerun(tmp_path: Path) -> None:
    """Sec. 4.5: 'The script is never re-executed': with retries 3 a failing script runs
    exactly once; 'Retrying...' is logged 3 times (noOfRetries = 3); outcome as with 0."""
    counter = tmp_path / "count"
    result = real_run(["sh", script(tmp_path, COUNTER_SCRIPT), str(counter)], retries=3)
    assert counter.read_text().count("run") == 1
    assert (result.attempts, result.retries_logged) == (1, 3)
    assert result.error_code == codes.PRE_FAILED
    assert sum("Retrying" in line for line in result.log) == 3


def test_documented_retries_rerun_until_exhausted(tmp_path: Path) -> None:
    """Sec. 14 'Retries' (docs): retries re-run the script up to N more times: a script
    that always fails runs N+1 times."""
    counter = tmp_path / "count"
    argv = ["sh", script(tmp_path, COUNTER_SCRIPT), str(counter)]
    result = real_run(argv, retries=3, profile=DOCUMENTED)
    assert counter.read_text().count("run") == 4
    assert (result.attempts, result.retries_logged) == (4, 3)
    assert result.error_code == codes.PRE_FAILED


def test_documented_retries_stop_at_first_success(tmp_path: Path) -> None:
    """Sec. 14 'Retries' (docs): the re-runs stop at the first success."""
    counter = tmp_path / "count"
    body = 'echo run >> "$1"\n[ "$(wc -l < "$1")" -ge 2 ]\n'
    result = real_run(["sh", script(tmp_path, body), str(counter)], retries=5, profile=DOCUMENTED)
    assert counter.read_text().count("run") == 2
    assert (result.attempts, result.retries_logged, result.error_code) == (2, 1, 0)


def test_retries_on_success_are_not_used() -> None:
    """Sec. 4.5: 'On success or timeout the loop ends without any retry'."""
    result, _, spawner = fake_run((0, 0), retries=3, profile=DOCUMENTED)
    assert (result.attempts, result.retries_logged, result.error_code) == (1, 0, 0)
    assert len(spawner.argvs) == 1


def test_retries_on_timeout_are_not_used() -> None:
    """Sec. 4.5: a timed-out script is not retried, in either profile."""
    for profile in (EXTENSION, DOCUMENTED):
        result, _, spawner = fake_run(
            (math.inf, 0), timeout_s=3, poll_s=1, retries=3, profile=profile
        )
        assert (result.attempts, result.retries_logged, result.timed_out) == (1, 0, True)
        assert len(spawner.argvs) == 1


def test_documented_retries_share_one_timeout_budget() -> None:
    """Sec. 4.4: 'The timeout budget covers all retries (the counter is never reset)':
    attempts failing after 1.5 s each, T=5, P=1 -> the third attempt times out at 5 s."""
    result, _, spawner = fake_run((1.5, 1), timeout_s=5, poll_s=1, retries=5, profile=DOCUMENTED)
    assert result.timed_out and result.duration_s == 5.0
    assert result.attempts == 3 and len(spawner.argvs) == 3


@pytest.mark.parametrize("retries", ["3", None, [1]])
def test_non_numeric_retries_after_failure_is_watchdog(retries: Any) -> None:
    """Sec. 2.2 table: non-numeric retries -> error only if the script fails, in the thread
    -> the host watchdog's 310 after (int(1800/P)+2)*P s, continueBackup True."""
    result, _, _ = fake_run((0.5, 1), retries=retries, poll_s=3)
    assert (result.error_code, result.watchdog, result.ran) == (
        codes.HOST_PRE_TIMEOUT,
        True,
        True,
    )
    assert result.exit_code == 1
    assert result.continue_backup is True
    assert result.duration_s == 1806.0


def test_non_numeric_retries_after_success_is_harmless() -> None:
    """Sec. 2.2 table: the retry count is only compared after a failure."""
    result, _, _ = fake_run((0.5, 0), retries="3")
    assert (result.error_code, result.watchdog) == (0, False)


def test_non_numeric_post_retries_is_311() -> None:
    """Sec. 2.2 table: postScriptNoOfRetries non-numeric, post fails -> 311."""
    result, _, _ = fake_run((0.5, 2), retries="x", which="post")
    assert result.error_code == codes.HOST_POST_TIMEOUT
