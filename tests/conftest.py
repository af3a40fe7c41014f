"""Suite-wide guard: after the whole session, nothing of ours may be left on the machine.

Runs once, in the process that owns the session (the xdist controller when ``-n`` is used),
after every test has finished: no loop device backed by a tagged image, no tagged mount, no
stand-in VM init, freeze guard or in-VM agent process. A leak fails the run.

Only what appeared during this session counts: another run going on at the same time (or the
leftovers of one that crashed before, which ``vmsnap cleanup`` releases) is not ours to judge.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MARKERS = (
    "pytest_vmsnap.vm.guest.vminit",
    "pytest_vmsnap.vm.guest.freeze_guard",
    "pytest_vmsnap.cycle.agent",
    "pytest_vmsnap.vm.guest.forkserver",
    "pytest_vmsnap.evidence.workload",
    "pytest_vmsnap.vm.reaper",
)


def leaked_processes() -> list[str]:
    """Our helper processes still alive (by their module name on the command line)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in cmdline for m in MARKERS):
            found.append(f"pid {proc.name}: {cmdline[:120]}")
    return found


def leaks() -> list[str]:
    """Everything of ours still on the machine."""
    from pytest_vmsnap.vm import cleanup

    left = cleanup.find_leftovers(include_live=True)
    out = [f"loop device {lo}" for lo in left.loops]
    out += [f"mount {m}" for m in left.mounts]
    out += leaked_processes()
    return out


_BEFORE = pytest.StashKey[set[str]]()


def _checks(config: pytest.Config) -> bool:
    # Not on an xdist worker: the controller checks once all workers are done.
    return not hasattr(config, "workerinput") and os.geteuid() == 0


def pytest_sessionstart(session: pytest.Session) -> None:
    if _checks(session.config):
        session.config.stash[_BEFORE] = set(leaks())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _checks(session.config) or session.config.getoption("collectonly"):
        return
    before = session.config.stash.get(_BEFORE, set())
    found = [line for line in leaks() if line not in before]
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.section("vmsnap leak check", sep="!", red=True)
            for line in found:
                reporter.write_line(f"left behind: {line}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
