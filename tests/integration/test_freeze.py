"""The freeze guard and GuardFreezer against real loop-mounted ext4/xfs file systems.

Every test's file systems come from the ``disks`` fixture, which always thaws (FITHAW) before it
unmounts, and detaches exactly the loop devices it attached.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_vmsnap.vm.freeze import GuardFreezer, mount_candidates_from_mountinfo
from pytest_vmsnap.vm.guest.freeze_guard import STALL_ENV, THAW_SIGNALS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: loop devices, mount and FIFREEZE"),
]

FIFREEZE = 0xC0045877
FITHAW = 0xC0045878
REPO = Path(__file__).resolve().parents[2]
MKFS = {"ext4": (["mkfs.ext4", "-q", "-F"], 32), "xfs": (["mkfs.xfs", "-q", "-f"], 300)}
# A writer on the frozen fs: open an existing file, write, fsync.
WRITER = (
    "import os, sys\n"
    "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)\n"
    "os.write(fd, b'x' * 4096)\n"
    "os.fsync(fd)\n"
)


def fithaw(path: str) -> bool:
    """Thaw ``path``; EINVAL (not frozen) is fine. True if it was frozen."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, FITHAW, 0)
        return True
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
        return False
    finally:
        os.close(fd)


def is_frozen(path: str) -> bool:
    """Probe without writing: FIFREEZE says EBUSY when frozen; else undo our own freeze."""
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.ioctl(fd, FIFREEZE, 0)
        except OSError as err:
            if err.errno == errno.EBUSY:
                return True
            raise
        fcntl.ioctl(fd, FITHAW, 0)  # the probe froze it: undo at once
        return False
    finally:
        os.close(fd)


def proc_state(pid: int) -> str | None:
    """One-letter state of ``pid`` (D, S, Z, ...), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return None


def saw(freezer: GuardFreezer, text: str, timeout_s: float = 3) -> bool:
    """Wait until the guard's output (read by the freezer's reader thread) has ``text``."""
    return wait_until(lambda: any(text in line for line in freezer.output), timeout_s)


def wait_until(pred: Callable[[], Any], timeout_s: float, step_s: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step_s)
    return bool(pred())


class Disks:
    """Loop-mounted file systems (and tmpfs) made for one test; :meth:`release` undoes all."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.loops: list[tuple[str, str, Path]] = []  # (mount point, device, image)
        self.tmpfs_mounts: list[str] = []
        self.procs: list[subprocess.Popen[Any]] = []
        self.freezers: list[GuardFreezer] = []

    def make(self, fs: str = "ext4") -> str:
        mkfs, size_mb = MKFS[fs]
        n = len(self.loops)
        image = self.base / f"vmsnap-freeze-{n}.{fs}.img"
        mnt = self.base / f"mnt{n}-{fs}"
        mnt.mkdir()
        subprocess.run(["truncate", "-s", f"{size_mb}M", str(image)], check=True)
        subprocess.run([*mkfs, str(image)], check=True, capture_output=True)
        dev = subprocess.run(
            ["losetup", "--find", "--show", str(image)], check=True, capture_output=True, text=True
        ).stdout.strip()
        self.loops.append((str(mnt), dev, image))
        subprocess.run(["mount", dev, str(mnt)], check=True, capture_output=True)
        return str(mnt)

    def tmpfs(self) -> str:
        mnt = self.base / f"tmpfs{len(self.tmpfs_mounts)}"
        mnt.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "vmsnap-test", str(mnt)], check=True
        )
        self.tmpfs_mounts.append(str(mnt))
        return str(mnt)

    def freezer(self, mounts: list[tuple[str, str]], **kwargs: Any) -> GuardFreezer:
        freezer = GuardFreezer(mounts, **kwargs)
        self.freezers.append(freezer)
        return freezer

    def spawn(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(argv, **kwargs)
        self.procs.append(proc)
        return proc

    def release(self) -> list[str]:
        errors: list[str] = []
        for freezer in self.freezers:
            freezer.close()
        # Thaw first, always: never unmount a frozen fs (it would stay frozen, invisibly).
        for mnt, _, _ in self.loops:
            if fithaw(mnt):
                errors.append(f"{mnt} was still frozen at the end of the test")
        for proc in self.procs:  # writers blocked on a frozen fs can only die after the thaw
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        for mnt, dev, image in reversed(self.loops):
            fithaw(mnt)
            done = subprocess.run(["umount", mnt], capture_output=True, text=True)
            if done.returncode:
                errors.append(f"umount {mnt}: {done.stderr.strip()}")
                continue  # keep the device: detaching a mounted one only sets autoclear
            subprocess.run(["losetup", "-d", dev], capture_output=True)
            image.unlink(missing_ok=True)
        for mnt in self.tmpfs_mounts:
            subprocess.run(["umount", mnt], capture_output=True)
        return errors


@pytest.fixture
def disks(tmp_path: Path) -> Iterator[Disks]:
    for tool in ("losetup", "mkfs.ext4", "mkfs.xfs", "mount", "umount", "truncate"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    made = Disks(tmp_path)
    try:
        yield made
    finally:
        errors = made.release()
    assert not errors, errors


def start_writer(disks: Disks, path: str) -> subprocess.Popen[Any]:
    return disks.spawn([sys.executable, "-S", "-c", WRITER, path], stdout=subprocess.DEVNULL)


def test_freeze_blocks_a_writer_in_d_state_until_thaw(disks: Disks) -> None:
    mnt = disks.make("ext4")
    target = os.path.join(mnt, "f")
    Path(target).write_bytes(b"")
    freezer = disks.freezer([(mnt, "ext4")], timeout_s=20)
    result = freezer.freeze()
    assert (result.code, result.mounts) == (0, [mnt]), result
    assert is_frozen(mnt)

    writer = start_writer(disks, target)
    assert wait_until(lambda: proc_state(writer.pid) == "D", 5), proc_state(writer.pid)
    time.sleep(0.2)
    assert writer.poll() is None, "the writer got through a frozen file system"

    start = time.monotonic()
    thawed = freezer.thaw()
    assert thawed.code == 0, thawed
    assert writer.wait(timeout=5) == 0
    released_s = time.monotonic() - start
    assert released_s < 1.0
    assert os.path.getsize(target) == 4096
    assert 0.2 < thawed.frozen_s[mnt] < 10


def test_two_mounts_frozen_in_order_and_thawed_in_reverse(disks: Disks) -> None:
    a, b = disks.make("ext4"), disks.make("xfs")
    candidates = mount_candidates_from_mountinfo([b, a])
    assert candidates == [(a, "ext4"), (b, "xfs")]  # mount-table order
    freezer = disks.freezer(candidates, timeout_s=20)
    assert freezer.mounts == [b, a]  # reverse of the mount table
    start = time.monotonic()
    result = freezer.freeze()
    called_to_frozen = time.monotonic() - start
    assert result.code == 0, result
    assert is_frozen(a) and is_frozen(b)
    os.stat(a)  # the "snapshot": trivial, and a read, which a frozen fs allows
    thawed = freezer.thaw()
    assert thawed.code == 0, thawed
    assert set(thawed.frozen_s) == {a, b}
    # b was frozen first and thawed last.
    assert thawed.frozen_s[b] >= thawed.frozen_s[a]
    assert max(thawed.frozen_s.values()) < 0.5
    assert freezer.freeze_latency_s is not None and freezer.freeze_latency_s <= called_to_frozen
    assert freezer.thaw_latency_s is not None and freezer.thaw_latency_s < 0.5
    assert not is_frozen(a) and not is_frozen(b)
    assert freezer.forced == []


def test_guard_self_thaws_at_its_timeout_and_thaw_reports_2(disks: Disks) -> None:
    mnt = disks.make("ext4")
    freezer = disks.freezer([(mnt, "ext4")], timeout_s=2)
    assert freezer.freeze().code == 0
    pid = freezer.guard_pid
    assert pid is not None
    assert saw(freezer, "THAWED", 4)
    assert "Failed to receive timely Thaw" in freezer.output
    assert freezer.frozen_at is not None and freezer.thawed_at is not None
    assert 2.0 <= freezer.thawed_at - freezer.frozen_at < 2.5
    assert not is_frozen(mnt)
    thawed = freezer.thaw()
    assert thawed.code == 2, thawed
    assert thawed.message.startswith("Snapshots are inconsistent")
    assert 2.0 <= thawed.frozen_s[mnt] < 2.5


HELPER = """
import sys, time
from pytest_vmsnap.vm.freeze import GuardFreezer, mount_candidates_from_mountinfo
freezer = GuardFreezer([(sys.argv[1], "ext4")], timeout_s=float(sys.argv[2]), wait_s=10)
result = freezer.freeze()
print(result.code, freezer.guard_pid, flush=True)
time.sleep(120)
"""


def test_sigkill_of_the_guards_parent_still_thaws_quickly(disks: Disks) -> None:
    mnt = disks.make("ext4")
    target = os.path.join(mnt, "f")
    Path(target).write_bytes(b"")
    timeout_s = 10.0
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    helper = disks.spawn(
        [sys.executable, "-c", HELPER, mnt, str(timeout_s)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert helper.stdout is not None
    code, guard_pid = helper.stdout.readline().split()
    assert code == "0"
    assert is_frozen(mnt)

    helper.kill()  # SIGKILL: no finally, no close(), nothing but the guard itself
    helper.wait(timeout=5)
    start = time.monotonic()
    writer = start_writer(disks, target)
    assert writer.wait(timeout=timeout_s + 2) == 0
    writable_after_s = time.monotonic() - start
    assert writable_after_s < 2.0, "thawed by the timeout, not by the parent's death"
    assert wait_until(lambda: proc_state(int(guard_pid)) in ("Z", None), 2)
    assert not is_frozen(mnt)


def test_every_thaw_signal_thaws(disks: Disks) -> None:
    mnt = disks.make("ext4")
    for sig in THAW_SIGNALS:
        freezer = disks.freezer([(mnt, "ext4")], timeout_s=20)
        assert freezer.freeze().code == 0, sig.name
        pid = freezer.guard_pid
        assert pid is not None
        os.kill(pid, sig)
        assert saw(freezer, "THAWED"), sig.name
        assert f"Thaw requested by {sig.name}" in freezer.output
        assert wait_until(lambda pid=pid: proc_state(pid) in ("Z", None), 3), sig.name
        assert not is_frozen(mnt), sig.name
        thawed = freezer.thaw()  # the guard was gone before the thaw request
        assert thawed.code == 2, (sig.name, thawed)
        assert "exit 0" in thawed.message


@pytest.mark.parametrize(
    ("mode", "path"), [("loop", "watchdog timer"), ("hard", "watchdog thread")]
)
def test_watchdog_thaws_when_the_main_loop_is_stuck(
    disks: Disks, monkeypatch: pytest.MonkeyPatch, mode: str, path: str
) -> None:
    monkeypatch.setenv(STALL_ENV, mode)
    mnt = disks.make("ext4")
    freezer = disks.freezer([(mnt, "ext4")], timeout_s=0.5)
    assert freezer.freeze().code == 0
    pid = freezer.guard_pid
    assert pid is not None
    assert saw(freezer, path), freezer.output
    assert saw(freezer, "THAWED"), freezer.output
    assert wait_until(lambda: proc_state(pid) in ("Z", None), 3)
    assert not is_frozen(mnt)
    assert freezer.thaw().code == 2


def test_thaw_signal_works_while_the_main_loop_is_stuck(
    disks: Disks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STALL_ENV, "loop")
    mnt = disks.make("ext4")
    freezer = disks.freezer([(mnt, "ext4")], timeout_s=20)
    assert freezer.freeze().code == 0
    thawed = freezer.thaw()
    assert thawed.code == 0, thawed
    assert freezer.thaw_latency_s is not None and freezer.thaw_latency_s < 0.5
    assert not is_frozen(mnt)


def test_open_failure_is_123_and_nothing_is_frozen(disks: Disks) -> None:
    mnt = disks.make("ext4")
    missing = os.path.join(mnt, "not-there")
    freezer = disks.freezer([(missing, "ext4"), (mnt, "ext4")], timeout_s=20)
    result = freezer.freeze()
    assert result.code == 123, result
    assert "Failed to open:" in result.message
    assert "FREEZING" not in freezer.output
    assert not is_frozen(mnt)


def test_tmpfs_cannot_be_frozen_121(disks: Disks) -> None:
    tmp = disks.tmpfs()
    # Declared as ext4 so the selection keeps it: FIFREEZE on tmpfs says EOPNOTSUPP.
    result = disks.freezer([(tmp, "ext4")], timeout_s=20).freeze()
    assert result.code == 121, result
    assert "Operation not supported" in result.message


def test_failure_part_way_thaws_what_was_frozen_121(disks: Disks) -> None:
    mnt, tmp = disks.make("ext4"), disks.tmpfs()
    freezer = disks.freezer([(tmp, "ext4"), (mnt, "ext4")], timeout_s=20)
    assert freezer.mounts == [mnt, tmp]  # mnt is frozen first, then tmp fails
    result = freezer.freeze()
    assert result.code == 121, result
    assert mnt in freezer.frozen_s  # the guard thawed it
    assert not is_frozen(mnt)
    assert freezer.forced == []


def test_a_failed_freeze_thaws_every_opened_mount_as_safefreeze_does(disks: Disks) -> None:
    """Errata E6: after a failed FIFREEZE, safefreeze issues FITHAW on every mount it opened,
    not only on those it froze: a mount frozen by someone else (here a first guard, as a
    pre-script could) is thawed too, and the message says so; the first guard's thaw then
    finds nothing frozen and reports the snapshot inconsistent (2)."""
    a, b = disks.make("ext4"), disks.make("ext4")
    first = disks.freezer([(a, "ext4")], timeout_s=20)
    second = disks.freezer([(a, "ext4"), (b, "ext4")], timeout_s=20)
    assert second.mounts == [b, a]  # b frozen first, then a fails: it is frozen already
    assert first.freeze().code == 0
    result = second.freeze()
    assert result.code == 121, result
    assert "Device or resource busy" in result.message
    assert f"also thawed {a}" in result.message, result.message
    assert not is_frozen(a) and not is_frozen(b)
    assert second.forced == []
    assert first.thaw().code == 2


def test_a_mount_point_that_is_not_a_directory_is_121_not_123(disks: Disks) -> None:
    """Errata E6: safefreeze opens a non-directory fine, then refuses it with a message that
    is not "Failed to open": the extension reports 121."""
    mnt = disks.make("ext4")
    afile = os.path.join(mnt, "a-file")
    Path(afile).write_text("x")
    result = disks.freezer([(afile, "ext4"), (mnt, "ext4")], timeout_s=20).freeze()
    assert result.code == 121, result
    assert "Not a directory" in result.message
    assert not is_frozen(mnt)


def test_no_frozen_report_in_time_is_122_and_nothing_stays_frozen(disks: Disks) -> None:
    mnt = disks.make("ext4")
    freezer = disks.freezer([(mnt, "ext4")], timeout_s=20, wait_s=0.001)
    result = freezer.freeze()
    assert result.code == 122, result
    assert freezer.guard_pid is None  # asked to thaw, and gone
    assert not is_frozen(mnt)


def test_close_forces_the_thaw_when_the_guard_does_not_answer(disks: Disks) -> None:
    mnt = disks.make("ext4")
    freezer = disks.freezer([(mnt, "ext4")], timeout_s=20, close_wait_s=0.2)
    assert freezer.freeze().code == 0
    pid = freezer.guard_pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # a guard that cannot answer
    assert freezer.close() == [mnt]
    assert freezer.guard_pid is None
    assert not is_frozen(mnt)
    assert freezer.close() == []  # idempotent


def test_context_manager_thaws_on_error(disks: Disks) -> None:
    mnt = disks.make("ext4")
    with pytest.raises(RuntimeError), disks.freezer([(mnt, "ext4")], timeout_s=20) as freezer:
        assert freezer.freeze().code == 0
        raise RuntimeError("snapshot blew up")
    assert not is_frozen(mnt)
    assert freezer.forced == []
