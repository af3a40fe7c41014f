"""The Debian packages of ``debian-packages.txt`` and their installation with apt.

Standard library only: ``python3 -m pytest_vmsnap.setup --print-packages`` runs with the
system's ``python3`` before any virtual environment exists. The installation is apt's own:
``apt-get install -y --no-install-recommends`` with ``DEBIAN_FRONTEND=noninteractive``, from
the sources apt is configured with (nothing here names a mirror), and only for what
``dpkg-query`` does not report installed. Services the packages would start on install are
held back with a ``policy-rc.d`` that exits 101 (the harness starts its own servers inside its
stand-in VMs and never uses the host's); it is removed again if we made it.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

LIST_NAME = "debian-packages.txt"
GROUPS = ("vm", "apps", "container", "report", "dev")
HARNESS_GROUPS = ("vm", "apps", "container")
"""What the harness needs; ``report`` and ``dev`` are for working on pytest-vmsnap itself."""
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Package:
    """One line of the list: a Debian package, its group, what it is for."""

    name: str
    group: str
    note: str = ""


def parse_list(text: str) -> list[Package]:
    """The packages of a list in the format of ``debian-packages.txt``: ``PACKAGE GROUP``
    per line, ``#`` starts a comment; ValueError naming the line for anything else."""
    out: list[Package] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line, _, note = raw.partition("#")
        words = line.split()
        if not words:
            continue
        if len(words) != 2 or words[1] not in GROUPS:
            raise ValueError(
                f"{LIST_NAME} line {number}: want 'PACKAGE GROUP' with GROUP one of "
                f"{', '.join(GROUPS)}, not {raw.strip()!r}"
            )
        if words[0] in seen:
            raise ValueError(f"{LIST_NAME} line {number}: {words[0]} is listed twice")
        seen.add(words[0])
        out.append(Package(words[0], words[1], note.strip()))
    return out


def list_text() -> str:
    """The shipped list's text."""
    return (resources.files(__package__) / LIST_NAME).read_text()


def read_list() -> list[Package]:
    """The shipped list."""
    return parse_list(list_text())


def select(packages: Iterable[Package], groups: Iterable[str] = HARNESS_GROUPS) -> list[str]:
    """The names of the packages in ``groups``, in list order; ValueError for an unknown
    group."""
    wanted = set(groups)
    unknown = wanted - set(GROUPS)
    if unknown:
        raise ValueError(
            f"unknown package group {', '.join(sorted(unknown))}; groups: {', '.join(GROUPS)}"
        )
    return [p.name for p in packages if p.group in wanted]


# --- what is installed --------------------------------------------------------------------------

DPKG_FORMAT = "${Package}\t${db:Status-Abbrev}\n"


def parse_dpkg_status(text: str) -> set[str]:
    """The installed packages in ``dpkg-query -W -f='${Package}\\t${db:Status-Abbrev}\\n'``
    output (status ``ii``: wanted and installed; an architecture suffix is dropped)."""
    out = set()
    for line in text.splitlines():
        name, sep, status = line.partition("\t")
        if sep and status.strip().startswith("ii"):
            out.add(name.split(":", 1)[0])
    return out


def installed(names: Sequence[str]) -> set[str]:
    """Which of ``names`` dpkg reports installed (none where there is no dpkg)."""
    if not names:
        return set()
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f", DPKG_FORMAT, *names],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return set()
    # Exit code 1 only says that some package is unknown to dpkg: the others are listed.
    return parse_dpkg_status(done.stdout)


def missing(names: Sequence[str], have: set[str]) -> list[str]:
    """``names`` that are not in ``have``, in order."""
    return [n for n in names if n not in have]


# --- apt ----------------------------------------------------------------------------------------


def install_argv(names: Sequence[str], *, simulate: bool = False) -> list[str]:
    """The ``apt-get install`` command line for ``names`` (``-s``: only simulate)."""
    return [
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        *(["-s"] if simulate else []),
        *names,
    ]


def apt_env() -> dict[str, str]:
    """This process's environment for apt: non-interactive, sbin on the PATH."""
    env = dict(os.environ, **APT_ENV)
    env["PATH"] = SBIN_PATH + ":" + env.get("PATH", "")
    return env


def parse_simulation(text: str) -> list[str]:
    """The packages ``apt-get -s install`` would unpack (its ``Inst NAME ...`` lines),
    dependencies included."""
    return [line.split()[1] for line in text.splitlines() if line.startswith("Inst ")]


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass
class SetupResult:
    """What ``vmsnap setup`` found and did."""

    wanted: list[str]
    missing: list[str]
    dry_run: bool
    would_install: list[str] = field(default_factory=list)
    """With ``dry_run``: every package apt would unpack, dependencies included."""
    installed: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    def lines(self) -> list[str]:
        """The result for a terminal, one line each."""
        if self.error:
            return [f"setup: {self.error}"]
        if not self.missing:
            return [f"setup: all {len(self.wanted)} packages are installed"]
        command = " ".join(install_argv(self.missing))
        if self.dry_run:
            out = [
                f"setup: {len(self.missing)} of {len(self.wanted)} packages missing: "
                + " ".join(self.missing),
                f"would run: apt-get update && DEBIAN_FRONTEND=noninteractive {command}",
            ]
            if self.would_install:
                out.append(
                    f"apt would unpack {len(self.would_install)} packages (dependencies "
                    f"included): {' '.join(self.would_install)}"
                )
            return out
        return [f"setup: installed {' '.join(self.installed)}"]


def setup(
    names: Sequence[str],
    *,
    dry_run: bool = False,
    run: Runner = subprocess.run,
    have: set[str] | None = None,
) -> SetupResult:
    """Install those of ``names`` that are missing (root); with ``dry_run`` nothing changes:
    apt only simulates the installation (no root needed). ``run`` and ``have`` (what is
    installed; default: asked from dpkg) are for tests."""
    have = installed(names) if have is None else have
    result = SetupResult(list(names), missing(names, have), dry_run)
    if not result.missing:
        return result
    if dry_run:
        done = run(
            install_argv(result.missing, simulate=True),
            capture_output=True,
            text=True,
            env=apt_env(),
            check=False,
        )
        if done.returncode:
            result.error = "apt-get -s install failed: " + _tail(done.stderr or done.stdout)
        result.would_install = parse_simulation(done.stdout)
        return result
    if os.geteuid() != 0:
        result.error = "installing packages needs root (try --dry-run to see what would happen)"
        return result
    made_policy = _hold_services()
    try:
        for argv in (["apt-get", "update", "-q"], install_argv(result.missing)):
            log.info("%s", " ".join(argv))
            done = run(argv, env=apt_env(), check=False)
            if done.returncode:
                result.error = f"{' '.join(argv)} failed with exit code {done.returncode}"
                return result
    finally:
        if made_policy:
            POLICY_RC_D.unlink(missing_ok=True)
    still = missing(names, installed(names))
    if still:
        result.error = f"apt-get finished, but dpkg does not list {' '.join(still)} as installed"
    result.installed = [n for n in result.missing if n not in still]
    return result


def _hold_services() -> bool:
    """A ``policy-rc.d`` that forbids starting services, unless one exists; True if made."""
    if POLICY_RC_D.exists():
        return False
    POLICY_RC_D.write_text("#!/bin/sh\n# vmsnap setup: no service starts on install\nexit 101\n")
    POLICY_RC_D.chmod(0o755)
    return True


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])
