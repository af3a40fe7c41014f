"""A reaper per run: when the controller dies without releasing what it made (SIGKILL, the
OOM killer, a crash of the interpreter), the reaper releases everything of the run's tag
within seconds, in the spirit of testcontainers' Ryuk.

:func:`start` runs ``python -m pytest_vmsnap.vm.reaper HOME TAG`` in its own session, with the
read end of a pipe as its stdin; the controller holds the write end, never inherited by
anything else. The pipe ends when the controller closes it (:meth:`Reaper.stop`, after the
run released everything and deleted its owner record) or when the kernel closes it because
the controller died. Then, if the owner record is still there and its owner is dead, the
reaper does what ``vmsnap cleanup --tag TAG`` does: thaw first (a frozen file system is never
unmounted), unmount, detach, delete, and removes the tag's containers; it retries while the
run's VM processes end and let go of their mounts.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from . import cleanup, names
from .helpers import helper_env

log = logging.getLogger(__name__)

SETTLE_S = 30.0
"""How long the reaper keeps trying while the dead run's processes end and let go."""


class Reaper:
    """The controller's handle on a run's reaper."""

    def __init__(self, home: Path, tag: str, *, containers: bool = False) -> None:
        read_end, self._write_end = os.pipe()  # neither end is inherited by other children
        argv = [sys.executable, "-m", __name__, str(home), tag]
        try:
            self.proc = subprocess.Popen(
                [*argv, "--containers"] if containers else argv,
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C to the controller's group spares it
                env=helper_env(),
            )
        finally:
            os.close(read_end)

    def stop(self, timeout_s: float = 10.0) -> None:
        """The run released everything: the reaper sees the pipe end and nothing to do."""
        if self._write_end < 0:
            return
        os.close(self._write_end)
        self._write_end = -1
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # by its exact PID
            self.proc.wait()


def start(home: Path, tag: str, *, containers: bool = False) -> Reaper:
    """Start the reaper of ``tag`` (whose owner record lives in ``home``); ``containers``:
    the run makes containers too (only then does the reaper ask Docker, which can be slow to
    answer, or gone)."""
    return Reaper(home, tag, containers=containers)


def reap(
    home: Path, tag: str, *, containers: bool = False, settle_s: float = SETTLE_S
) -> list[str]:
    """Release everything of ``tag`` if its owner is dead; the actions taken."""
    actions: list[str] = []
    # The kernel closes a dying process's files before it is a zombie: the pipe can end
    # while the owner still looks alive for a moment. Wait for it to be really gone.
    deadline = time.monotonic() + settle_s
    while names.owner_alive(home, tag) and time.monotonic() < deadline:
        time.sleep(0.02)
    if names.owner_alive(home, tag) is not False:
        return actions  # released cleanly (no record), or the owner lives on
    if containers:
        actions += _remove_containers(home, tag)  # they hold the disks' loop devices
    while True:
        found = cleanup.find_leftovers(home, tag_prefix=tag)
        if not (found.mounts or found.loops or found.files):
            return actions
        report = cleanup.release(found)
        actions += report.actions
        if time.monotonic() > deadline:
            for error in report.errors:
                log.error("reaper %s: %s", tag, error)
            return actions
        time.sleep(0.2)


def _remove_containers(home: Path, tag: str) -> list[str]:
    """The tag's containers, when Docker's SDK is here at all (a host VM needs none)."""
    try:
        from .docker.container import remove_leftovers
    except ImportError:
        return []
    try:
        return remove_leftovers(tag, home=home)
    except Exception as err:  # the engine may be gone with the controller
        log.warning("reaper %s: containers: %s", tag, err)
        return []


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    home, tag = args[:2]
    while os.read(0, 4096):
        pass  # nothing is ever written: the pipe only ends
    for action in reap(Path(home), tag, containers="--containers" in args[2:]):
        log.info("reaper %s: %s", tag, action)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="vmsnap reaper: %(message)s")
    sys.exit(main())
