"""Full cycles with the real freeze guard and real snapshots, across backends and filesystems.

Each case runs the framework engine inside a host stand-in VM on loop disks, freezes through the
guard, snapshots from the host side, restores into a fresh VM and lets the oracle judge an
SQLite database that was written to throughout. Prompt pacing keeps each case to seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap import data
from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.evidence import oracle
from pytest_vmsnap.framework.azure.environment import EXTENSION_DIR, SCRIPT_ENV
from pytest_vmsnap.settings import Settings
from pytest_vmsnap.vm.helpers import PACKAGE_ROOT

SAMPLES = data.sample_scripts("sqlite")


@pytest.fixture
def sqlite_files(tmp_path: Path, root_required: None) -> dict[str, Path]:
    """The bundled SQLite example's config and scripts, with the modes the framework wants."""
    files = {}
    for name in ("pre.sh", "post.sh", "pre-lock-released.sh", "pre-hangs.sh"):
        dst = tmp_path / name
        shutil.copy(SAMPLES / name, dst)
        dst.chmod(0o700)
        files[name] = dst
    config = tmp_path / "VMSnapshotScriptPluginConfig.json"
    shutil.copy(data.example("sqlite") / data.CONFIG_NAME, config)
    config.chmod(0o600)
    files["config"] = config
    return files


def settings(files: dict[str, Path], **changes: object) -> Settings:
    base = Settings(
        config=files["config"],
        pre=files["pre.sh"],
        post=files["post.sh"],
        app="sqlite",
        quiesce="lock",
        pacing="prompt",
        workload_seconds=0.6,
    )
    return base.with_(**changes)


@pytest.mark.parametrize(
    ("backend", "fs"),
    [
        ("reflink", "ext4"),
        ("reflink", "xfs"),
        ("reflink", "btrfs"),
        ("copy", "ext4"),
        ("btrfs", "ext4"),
    ],
)
def test_correct_scripts_are_application_consistent(
    sqlite_files: dict[str, Path], backend: str, fs: str
) -> None:
    """Correct pre/post + real freeze + each snapshot backend -> application-consistent."""
    result = run(settings(sqlite_files, snapshot=backend, fs=fs))
    d = result.to_dict()
    assert d["verdict"] == oracle.APPLICATION, (d["reasons"], d["error"])
    assert d["status"] == 0 and d["health_code"] == 0
    assert d["freeze"]["frozen"] and d["freeze"]["mounts"] == ["/var/lib/app"]
    assert 0 < d["freeze"]["frozen_s"] < 2.0
    assert d["snapshot"]["taken"] and d["snapshot"]["backend"] == backend
    assert d["oracle"]["acked_before_pre"] > 0 and d["oracle"]["acked_missing"] == 0
    assert d["oracle"]["quiesce_probe"]["result"] == "blocked"
    phases = [p["phase"] for p in d["timeline"]]
    assert phases == ["precheck", "pre", "freeze", "snapshot", "thaw", "post"]


def test_two_disks_frozen_together(sqlite_files: dict[str, Path]) -> None:
    """A two-disk VM: both disks are frozen, in reverse mount order; still consistent."""
    d = run(settings(sqlite_files, disks=2)).to_dict()
    assert d["verdict"] == oracle.APPLICATION, (d["reasons"], d["error"])
    assert d["freeze"]["mounts"] == ["/srv/disk2", "/var/lib/app"]


def test_lock_released_on_exit_is_caught(sqlite_files: dict[str, Path]) -> None:
    """The lock taken in a client that exits protects nothing: the probe's write is accepted."""
    d = run(settings(sqlite_files, pre=sqlite_files["pre-lock-released.sh"])).to_dict()
    assert d["verdict"] == oracle.CRASH
    assert d["oracle"]["quiesce_probe"]["result"] == "accepted"
    assert any("quiesce probe" in r for r in d["reasons"])


def test_snapshot_failure_still_thaws_and_runs_post(sqlite_files: dict[str, Path]) -> None:
    """A snapshot failing after the freeze: error 2, thawed, post-script ran, app writable."""
    result = run(
        settings(sqlite_files),
        hooks={
            "snapshot": lambda: {
                "code": 2,
                "taken": False,
                "backend": "injected",
                "message": "injected",
            }
        },
    )
    d = result.to_dict()
    assert d["verdict"] == oracle.NOT_TAKEN
    assert d["status"] == 2 and d["health_code"] == 2
    assert d["freeze"]["frozen"] and d["freeze"]["thaw_code"] == 0
    assert d["scripts"]["post"]["ran"] and d["scripts"]["post"]["exit_code"] == 0
    assert d["oracle"]["liveness_ok"] is True


def test_sigkill_mid_freeze_leaves_nothing_frozen(
    sqlite_files: dict[str, Path], tmp_path: Path
) -> None:
    """The harness's whole process group is SIGKILLed while the VM is frozen: the freeze
    guard thaws on its own (parent death), the VM's init thaws as it ends, and the run's
    reaper releases what the dead run left, within seconds and without `vmsnap cleanup`."""
    victim, info = frozen_victim(sqlite_files, tmp_path)
    try:
        os.killpg(victim.pid, signal.SIGKILL)  # the reaper has its own session
        victim.wait(timeout=10)
        killed = time.monotonic()
        deadline = killed + 15
        while Path(f"/proc/{info['pid']}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{info['pid']}").exists(), "the VM outlived its controller"
        # No `vmsnap cleanup`: the run's reaper releases everything of its tag by itself.
        deadline = killed + 30
        while leftovers(info["tag"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert leftovers(info["tag"]) == [], "the reaper left resources of the dead run"
        # A file system left frozen would keep its loop device busy: it is gone, so it was
        # thawed (and nothing is left to probe).
        loops = subprocess.run(["losetup", "--json", "--list"], capture_output=True, text=True)
        assert info["tag"] not in loops.stdout
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
    done = subprocess.run(
        [sys.executable, "-m", "pytest_vmsnap.cli", "cleanup", "--tag", info["tag"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "nothing of ours is left" in done.stdout, done.stdout


def frozen_victim(
    files: dict[str, Path], tmp_path: Path
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """A controller process (its own session) running an SQLite cycle, held in the frozen
    window by a hook that would sleep 60 s; returns it with its VM's pid, disk and tag once it
    is there. It prints the name of what ended its cycle and exits 3."""
    marker = tmp_path / "frozen.json"
    script = tmp_path / "victim.py"
    script.write_text(f"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, {PACKAGE_ROOT!r})
from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.settings import Settings
s = Settings(config=Path({str(files["config"])!r}), pre=Path({str(files["pre.sh"])!r}),
             post=Path({str(files["post.sh"])!r}), app="sqlite", pacing="prompt",
             quiesce="lock")
def hold(vm):
    Path({str(marker)!r}).write_text(
        json.dumps({{"pid": vm.pid, "loop": vm.disks[0].loopdev, "tag": vm.tag}}))
    time.sleep(60)
try:
    run(s, hooks={{"after_freeze": hold}})
except BaseException as err:
    print(type(err).__name__, flush=True)
    raise SystemExit(3)
""")
    victim = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and victim.poll() is None:
        time.sleep(0.05)
    if not marker.exists():
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        raise AssertionError("the victim never reached the frozen window")
    return victim, json.loads(marker.read_text())


def leftovers(tag: str) -> list[str]:
    """Everything of ``tag`` that is still there: mounts, loop devices, files, processes."""
    from pytest_vmsnap.vm import cleanup

    found = cleanup.find_leftovers(tag_prefix=tag, include_live=True)
    procs = [
        p.name for p in Path("/proc").iterdir() if p.name.isdigit() and tag.encode() in _cmdline(p)
    ]
    return [*map(str, found.mounts), *map(str, found.loops), *map(str, found.files), *procs]


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def test_crash_consistent_baseline(sqlite_files: dict[str, Path]) -> None:
    """The baseline mode: same snapshot, no scripts, no freeze -> at best crash-consistent,
    with the writes acknowledged before the snapshot started checked in the restored copy."""
    d = run(settings(sqlite_files, baseline=True, quiesce="none")).to_dict()
    assert d["verdict"] == oracle.CRASH, (d["reasons"], d["error"])
    assert not d["scripts"]["pre"]["ran"] and not d["freeze"]["frozen"]
    assert d["snapshot"]["taken"] and d["oracle"]["started"]
    assert d["oracle"]["acked_before_pre"] > 0
    assert any("baseline" in r for r in d["reasons"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_frozen_releases_everything_at_once(
    sqlite_files: dict[str, Path], tmp_path: Path, sig: signal.Signals
) -> None:
    """SIGTERM or SIGINT reaches the harness while the VM is frozen and a hook would hold it
    for 60 s more: the cycle unwinds at once (no waiting for the workload or the agent), the
    file systems are thawed first, and nothing of the run is left, reaper included."""
    victim, info = frozen_victim(sqlite_files, tmp_path)
    try:
        sent = time.monotonic()
        os.kill(victim.pid, sig)
        out, _ = victim.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
    expected = "Terminated" if sig == signal.SIGTERM else "KeyboardInterrupt"
    assert out.strip() == expected and victim.returncode == 3
    assert took < 10, f"the unwind took {took:.1f} s"  # the 60 s hook was not waited for
    assert leftovers(info["tag"]) == []
    assert not Path(f"/proc/{info['pid']}").exists()


def test_a_script_that_kills_the_framework_gets_its_own_finding(
    sqlite_files: dict[str, Path], tmp_path: Path
) -> None:
    """``kill -9 $PPID`` in the pre-script kills the framework's process: no snapshot, said in
    the user's terms with a finding of its own, not a harness error."""
    killer = tmp_path / "pre-kills-parent.sh"
    killer.write_text("kill -9 $PPID\nsleep 5\n")
    killer.chmod(0o700)
    d = run(settings(sqlite_files, pre=killer)).to_dict()
    assert d["verdict"] == oracle.NOT_TAKEN and d["error"] == ""
    assert "the pre-script killed the framework's process (signal 9)" in d["reasons"][0]
    (finding,) = [f for f in d["findings"] if f["name"] == "ScriptKilledFramework"]
    assert "$PPID" in finding["action"]
    assert leftovers(d["tag"]) == []


def test_scripts_get_the_extensions_environment_not_the_callers(
    sqlite_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Errata E9: the scripts run with the extension's environment and working directory;
    variables of the caller's shell (a PGHOST, a MYSQL_PWD, HOME) never reach them."""
    for key, value in (("PGHOST", "callers-db"), ("MYSQL_PWD", "secret"), ("HOME", "/root")):
        monkeypatch.setenv(key, value)
    probe = tmp_path / "pre-env.sh"
    probe.write_text(
        'echo "cwd=$(pwd)"\necho "host=$(hostname)"\n'
        'echo "resolves=$(getent hosts "$(hostname)" | wc -l)"\nenv | sort\n'
    )
    probe.chmod(0o700)
    added = (("APP_ENV", "prod"), ("DB_NAME", "a b=c"))  # vmsnap_env: on purpose
    d = run(settings(sqlite_files, pre=probe, quiesce="none", env=added)).to_dict()
    out = d["scripts"]["pre"]["stdout"]
    lines = set(out.splitlines())
    assert {"APP_ENV=prod", "DB_NAME=a b=c"} <= lines, out
    assert f"cwd={EXTENSION_DIR}" in lines, out
    # The VM's own name (not this host's), and it resolves there as on a real VM.
    (host,) = [line.removeprefix("host=") for line in lines if line.startswith("host=")]
    assert host == "source" != socket.gethostname(), out
    assert "resolves=1" in lines, out
    for key, value in SCRIPT_ENV.items():
        assert f"{key}={value}" in lines, (key, out)
    names = {line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("cwd=")}
    assert not names & {"PGHOST", "MYSQL_PWD", "HOME", "PYTHONPATH", "HOSTNAME"}, names


def test_an_error_the_pre_script_hid_behind_exit_zero_is_a_finding(
    sqlite_files: dict[str, Path], tmp_path: Path
) -> None:
    """Issue 11: a client error in the script's output while it exits 0 (the extension sees
    success) is named in the result's findings."""
    masked = tmp_path / "pre-masked.sh"
    masked.write_text("echo 'ERROR:  permission denied for function pg_backup_start' >&2\nexit 0\n")
    masked.chmod(0o700)
    d = run(settings(sqlite_files, pre=masked, quiesce="none")).to_dict()
    assert d["scripts"]["pre"]["exit_code"] == 0 and d["status"] == 0
    (finding,) = [f for f in d["findings"] if f["name"] == "MaskedScriptFailure"]
    assert "pg_backup_start" in finding["message"]


def _vm_process(vm: Any, module: str) -> int:
    """The host PID of the VM's process running ``module`` (the VM's own processes only)."""
    ns = os.readlink(f"/proc/{vm.pid}/ns/pid")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            same = os.readlink(proc / "ns/pid") == ns
        except OSError:
            continue
        if same and f"-m {module}".encode() in _cmdline(proc).replace(b"\0", b" "):
            return int(proc.name)
    raise AssertionError(f"no {module} in VM {vm.name}")


def test_framework_dying_while_frozen_says_what_the_real_helper_would_do(
    sqlite_files: dict[str, Path], tmp_path: Path
) -> None:
    """Errata E4: the extension's safefreeze thaws only on SIGUSR1 or at its own timeout. When
    the framework's process dies in the frozen window, the harness thaws at once (its guard
    watches its parent) and says that production would have stayed frozen until the timeout."""

    def after_freeze(vm: Any) -> None:
        os.kill(_vm_process(vm, "pytest_vmsnap.cycle.agent"), signal.SIGKILL)

    # Scripts that hold nothing: the sample's lock holder would wait for a post-script that
    # never comes.
    noop = tmp_path / "noop.sh"
    noop.write_text("exit 0\n")
    noop.chmod(0o700)
    cycle = settings(sqlite_files, pre=noop, post=noop, quiesce="none")
    d = run(cycle, hooks={"after_freeze": after_freeze}).to_dict()
    assert d["verdict"] == oracle.ERROR, d["reasons"]
    assert "ended while the file systems were frozen" in d["error"], d["error"]
    assert "only on SIGUSR1 or at its own timeout" in d["error"], d["error"]
    assert leftovers(d["tag"]) == []


def test_a_pre_script_waiting_on_the_post_script_gets_advice_not_a_longer_timeout(
    sqlite_files: dict[str, Path], tmp_path: Path
) -> None:
    """Issue 11: a pre-script that waits for a flag only the post-script removes runs into its
    timeout on every backup; the result says so, and no longer advises a longer timeout."""
    pre, post = tmp_path / "pre-waits.sh", tmp_path / "post-waits.sh"
    pre.write_text("touch /run/app-quiesced\nwhile [ -e /run/app-quiesced ]; do sleep 0.2; done\n")
    post.write_text("rm -f /run/app-quiesced\n")
    config = json.loads(sqlite_files["config"].read_text())
    config.update(timeoutInSeconds=2, preScriptParams=[])
    short = tmp_path / "short.json"
    short.write_text(json.dumps(config))
    short.chmod(0o600)
    for script in (pre, post):
        script.chmod(0o700)
    d = run(settings(sqlite_files, config=short, pre=pre, post=post, quiesce="none")).to_dict()
    assert d["scripts"]["pre"]["timed_out"] and d["health_code"] == 308, d["findings"]
    (advice,) = [f for f in d["findings"] if f["name"] == "PreScriptWaitsOnPost"]
    assert "/run/app-quiesced" in advice["message"], advice
    assert "does not help" in advice["action"]
    (timeout,) = [f for f in d["findings"] if f["code"] == 308]
    assert "raise timeoutInSeconds" not in timeout["action"], timeout
