"""Canaries for the containment tests: files in every top-level directory of this host, a
manifest of what must not change, and a pre-script that attacks all of it from inside a VM."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_vmsnap.vm import names
from pytest_vmsnap.vm.helpers import PACKAGE_ROOT
from pytest_vmsnap.vm.linux import thaw

NOT_FILES = ("proc", "sys", "dev")


@dataclass
class Canaries:
    """The canaries placed on this host for one test (``id`` tells them from others')."""

    id: str
    placed: dict[Path, bytes]

    def attack(self) -> str:
        """A pre-script (``sh``) that, from inside the VM, writes a file into every directory
        it sees at the top, rewrites every canary, tries to freeze ``/``, ``/usr``, the
        harness's files and the state directory, then runs ``rm -rf`` on ``/usr``,
        ``/var/tmp`` and the state directory (the pools). It exits 0."""
        home = names.vmsnap_home()
        return f"""#!/bin/sh
for d in / /*/; do echo vm > "${{d}}vmsnap-canary-vm-{self.id}" 2>/dev/null; done
for f in /vmsnap-canary-host-{self.id} /*/vmsnap-canary-host-{self.id}; do
  echo changed > "$f" 2>/dev/null; chmod 777 "$f" 2>/dev/null
done
for p in / /usr /etc/hosts {PACKAGE_ROOT} {home}; do
  fsfreeze -f "$p" 2>/dev/null && echo "froze $p" >&2
done
rm -rf /usr /var/tmp {home} 2>/dev/null
exit 0
"""

    def changes(self) -> list[str]:
        """What the attack changed on this host: canaries changed or gone, files of the VM
        found on this host."""
        found = []
        for path, content in self.placed.items():
            try:
                if path.read_bytes() != content or path.stat().st_mode & 0o777 != 0o644:
                    found.append(f"changed {path}")
            except OSError:
                found.append(f"gone {path}")
        for top in _tops():
            stray = top / f"vmsnap-canary-vm-{self.id}"
            if stray.exists():
                found.append(f"written by the VM: {stray}")
        return found


def _tops() -> list[Path]:
    tops = [Path("/")]
    for entry in sorted(os.scandir("/"), key=lambda e: e.name):
        if entry.name not in NOT_FILES and entry.is_dir(follow_symlinks=False):
            tops.append(Path(entry.path))
    return tops


@contextlib.contextmanager
def placed() -> Iterator[Canaries]:
    """A canary (mode 644) in ``/`` and in every top-level directory of this host that takes
    one; removed afterwards. Thaws ``/`` and ``/usr`` afterwards too, in case an attack froze
    this host (then the test has already failed)."""
    c = Canaries(uuid.uuid4().hex[:8], {})
    try:
        for top in _tops():
            path = top / f"vmsnap-canary-host-{c.id}"
            content = f"host canary {c.id} in {top}\n".encode()
            try:
                path.write_bytes(content)
                path.chmod(0o644)
            except OSError:
                continue  # a read-only directory of this host: nothing to guard there
            c.placed[path] = content
        yield c
    finally:
        for p in ("/", "/usr", PACKAGE_ROOT, str(names.vmsnap_home())):
            thaw(p)
        for path in [*c.placed, *(t / f"vmsnap-canary-vm-{c.id}" for t in _tops())]:
            with contextlib.suppress(OSError):
                path.unlink()


def manifest(*dirs: str | Path) -> dict[str, tuple[int, int, int]]:
    """Name -> (mode, size, mtime in ns) of every entry directly in ``dirs``."""
    out = {}
    for d in dirs:
        for entry in os.scandir(d):
            st = entry.stat(follow_symlinks=False)
            out[entry.path] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out
