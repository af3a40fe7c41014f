"""The zero-code battery: the checks ``pytest --vmsnap`` collects from the user's settings.

Each check runs one or more vmsnap cycles and raises :class:`CheckFailed` with a short,
readable explanation when its expectation is not met. Cycles that several checks share (the
main cycle under load feeds the main, quiesce and liveness checks) run once per session, also
under pytest-xdist: the first worker that needs a cycle runs it holding a lock in a directory
the controller shares with its workers (:class:`Shared`), the others wait for it and read its
result. So the items that share a cycle judge the same cycle whichever worker ``--dist``
sends them to (``xdist_group`` marks would need ``--dist loadgroup`` and still leave
``load`` and ``worksteal`` running it once per worker).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pickle
import shlex
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import VmsnapLintWarning
from ..cycle.result import RunResult
from ..cycle.run import Hooks, run
from ..evidence import oracle
from ..framework.azure import codes
from ..framework.interfaces import SnapshotResult
from ..report.html.checks import Expected
from ..report.text import explain
from ..settings import Settings, VmKind
from .reporter import cycle_label

SKIP_NO_ROOT = (
    "needs root for loop devices and fsfreeze: run pytest as root (the lint item runs without it)"
)
SKIP_DIR = (
    "vmsnap_vm = dir has no database, freeze or snapshot to judge: use host or container (as root)"
)


def vm_unavailable(settings: Settings) -> str | None:
    """Why the battery's cycle items cannot run here (their one skip reason), or None."""
    if settings.vm == VmKind.DIR:
        return SKIP_DIR
    if os.geteuid() != 0:
        return SKIP_NO_ROOT
    return None


_APPLICATION = Expected.verdict_is(oracle.APPLICATION)
"""What the main and window checks expect of their cycle."""


class CheckFailed(Exception):
    """A check's expectation was not met; the message is what the user reads."""


class Shared:
    """Cycle results shared by the processes of one pytest-xdist session, in a directory the
    controller made for it (and removes)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def once(self, key: str, make: Callable[[], RunResult]) -> tuple[RunResult, bool]:
        """The result of cycle ``key``: ``make()``'s, run here (True), unless another process
        of the session ran it (False). A process that needs it meanwhile waits; if the one
        running it dies, its lock goes with it and the next one runs the cycle itself."""
        done = self.directory / f"{key}.pickle"
        with open(self.directory / f"{key}.lock", "ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if done.exists():
                return pickle.loads(done.read_bytes()), False
            result = make()
            part = done.with_suffix(".part")
            part.write_bytes(pickle.dumps(result))
            part.replace(done)
            return result, True


@dataclass
class Context:
    """Shared state of one pytest session's battery (one per process)."""

    settings: Settings
    shared: Shared | None = None
    """Under pytest-xdist: where the session's workers share their cycles."""
    runs: dict[str, RunResult] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)
    """Keys of the cycles the current check ran or looked at."""
    fresh: list[str] = field(default_factory=list)
    """Keys of the cycles the current check ran itself (not another worker)."""
    sections: list[tuple[str, str]] = field(default_factory=list)
    """(title, text) for the current check's report."""
    lint: dict[str, int] | None = None
    """The lint item's counts (``errors``, ``warnings``), once it ran."""
    expected: dict[str, Expected] = field(default_factory=dict)
    """What the checks expect of each cycle, by key (the HTML report's per-cycle line)."""
    _faults: Path | None = None

    def begin(self) -> None:
        """Forget what the previous check used: a new check starts."""
        self.used.clear()
        self.fresh.clear()
        self.sections.clear()

    def fault_dir(self) -> Path:
        """A fresh directory for one fault's files, removed by :meth:`close`."""
        if self._faults is None:
            self._faults = Path(tempfile.mkdtemp(prefix="vmsnap-fault-"))
        return Path(tempfile.mkdtemp(dir=self._faults))

    def close(self) -> None:
        """Remove the fault files (at the end of the session)."""
        if self._faults is not None:
            shutil.rmtree(self._faults, ignore_errors=True)
            self._faults = None

    def cycle(
        self,
        key: str,
        settings: Settings | None = None,
        hooks: Hooks | None = None,
        expected: Expected | None = None,
    ) -> RunResult:
        """Run (once per session) and remember the cycle called ``key`` (of which the
        calling check expects ``expected``)."""
        if expected is not None:
            self.expected[key] = expected
        if key not in self.runs:

            def make() -> RunResult:
                with cycle_label(key):
                    return run(settings or self.settings, hooks=hooks)

            result, fresh = (make(), True) if self.shared is None else self.shared.once(key, make)
            self.runs[key] = result
            if fresh:
                self.fresh.append(key)
        self.used.append(key)
        return self.runs[key]


@dataclass(frozen=True)
class Check:
    """One collected item: its name in the node ID (``vmsnap::<name>``), a readable title
    and the function that checks it (whose docstring says what passes)."""

    name: str
    title: str
    func: Callable[[Context], None]
    needs_vm: bool = True


def _lint(ctx: Context) -> None:
    """The framework's own pre-check accepts the config and the scripts, installed as a
    cycle installs them. Lint's warnings (what the pre-check lets through but still breaks
    backups) are reported as VmsnapLintWarning; with vmsnap_lint_strict = true they fail the
    item."""
    from ..cycle.lint_files import lint_files, lint_hosted

    s = ctx.settings
    if s.framework != "azure":
        report = lint_hosted(s.framework, s.files(), owner=s.owner, modes=s.modes)
    else:
        assert s.config is not None
        report = lint_files(
            s.config,
            s.pre,
            s.post,
            profile=s.profile,
            owner=s.owner,
            modes=s.modes,
            at=(s.pre_at, s.post_at),
        )
    text = report.format_text()
    ctx.lint = {"errors": len(report.errors), "warnings": len(report.warnings)}
    if report.findings:
        ctx.sections.append(("vmsnap lint", text))
    if report.errors:
        raise CheckFailed(text)
    for finding in report.warnings:
        # At the user's file and line, so pytest's warnings summary points there (and
        # -W error::pytest_vmsnap.VmsnapLintWarning turns it into this item's failure).
        warnings.warn_explicit(
            VmsnapLintWarning(f"{finding.id}: {finding.message}\n    -> {finding.action}"),
            VmsnapLintWarning,
            finding.path or str(s.config),
            finding.line or 0,
        )
    if report.warnings and s.lint_strict:
        raise CheckFailed(f"{text}\n(vmsnap_lint_strict = true: lint warnings fail this item)")


def _main_cycle(ctx: Context) -> None:
    """The main cycle under a recorded write load is application-consistent: the restored
    copy starts, passes its integrity checks, holds every write acknowledged before the
    pre-script returned, and its invariants hold."""
    r = ctx.cycle("main", expected=_APPLICATION)
    if r.verdict != oracle.APPLICATION:
        raise CheckFailed(explain(r.to_dict(), oracle.APPLICATION))


def _quiesce(ctx: Context) -> None:
    """The quiesce probe ran in the main cycle; with vmsnap_quiesce = lock, a write on a
    fresh connection blocked or was refused between the pre-script and the snapshot."""
    r = ctx.cycle("main", expected=_APPLICATION)
    ev = r.evidence
    if ev.quiesce_probe is None:
        raise CheckFailed("the quiesce probe did not run: " + explain(r.to_dict(), "a probe"))
    if ctx.settings.quiesce == "lock" and ev.quiesce_probe_ok is False:
        raise CheckFailed(_quiesce_failure(r))


def _quiesce_failure(r: RunResult) -> str:
    """Why the quiesce probes failed (the oracle's words: role, moment, read_only), the
    probe's own detail and what to do."""
    probe = r.evidence.quiesce_probe or {}
    why = next(
        (x for x in r.reasons if x.startswith("quiesce probe")),
        f"quiesce probe: a write on a fresh connection was {probe.get('result')}",
    )
    return (
        f"{why}\n  (vmsnap_quiesce = lock: the scripts claim to hold a lock)\n"
        f"  probe: {probe.get('detail')}\n"
        "    -> Keep the lock in a session that outlives the pre-script (a background "
        "holder released by the post-script), return from the pre-script only once the lock "
        "is held, and give its watchdog more time than the longest snapshot window."
    )


def _worst_window(ctx: Context) -> None:
    """The main cycle again with the capture held vmsnap_worst_window seconds longer (a slow
    freeze or host snapshot) is still application-consistent: a lock with a fixed lifetime
    or a watchdog shorter than that is caught."""
    s = ctx.settings
    r = ctx.cycle("window", s.with_(window_s=s.worst_window_s), expected=_APPLICATION)
    if r.verdict == oracle.APPLICATION:
        return
    if s.quiesce == "lock" and r.evidence.quiesce_probe_ok is False:
        raise CheckFailed(
            f"with the capture held {s.worst_window_s:g} s longer (a slow freeze or host "
            f"snapshot): {_quiesce_failure(r)}"
        )
    raise CheckFailed(
        f"with the capture held {s.worst_window_s:g} s longer (a slow freeze or host "
        "snapshot):\n" + explain(r.to_dict(), oracle.APPLICATION)
    )


def _liveness(ctx: Context) -> None:
    """After the post-script of the main cycle the application accepts writes again within
    the bound (nothing left locked, paused or read-only)."""
    r = ctx.cycle("main", expected=_APPLICATION)
    ev = r.evidence
    if ev.liveness_ok is not True:
        last = (ev.liveness or {}).get("last", {})
        raise CheckFailed(
            f"after the post-script the application could not write within the bound: "
            f"{last.get('result')}: {last.get('detail')}\n"
            "    -> The post-script must undo everything the pre-script did (unlock, "
            "read_only off, unpause)."
        )


def _config_value(settings: Settings, key: str) -> Any:
    """One key of the user's config (None when it cannot be read)."""
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError, RecursionError):
        return json.loads(Path(settings.config).read_text()).get(key)  # type: ignore[arg-type]
    return None


def _config_data(config: Path) -> dict[str, Any]:
    """The user's config as an object, which the fault checks change; CheckFailed (one line)
    when it is not one."""
    try:
        data = json.loads(config.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        why = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise CheckFailed(
            f"the config cannot be read as JSON ({why}): the fault checks change its keys"
        ) from None
    if not isinstance(data, dict):
        raise CheckFailed("the config is not a JSON object: the fault checks change its keys")
    return data


def _with_script(ctx: Context, which: str, body: str, **config_changes: Any) -> Settings:
    """Settings whose pre- or post-script is replaced by ``body`` (a fault)."""
    s = ctx.settings
    assert s.config is not None
    tmp = ctx.fault_dir()
    script = tmp / f"{which}.sh"
    script.write_text(body)
    script.chmod(0o700)
    data = _config_data(s.config)
    data.update(config_changes)
    config = tmp / "VMSnapshotScriptPluginConfig.json"
    config.write_text(json.dumps(data))
    config.chmod(0o600)
    return s.with_(config=config, **{which: script})


def _expect(r: RunResult, status: int, health: int, label: str) -> None:
    wrong = ""
    if r.status != status or r.health_code != health:
        wrong = (
            f"expected status {status} and health code {health} "
            f"({codes.lookup(health).docs_name or codes.lookup(health).name}), got "
            f"status {r.status} and health code {r.health_code}"
        )
    fail_row(r, wrong, label)


def fail_row(r: RunResult, wrong: str, label: str) -> None:
    """CheckFailed when a fault cycle missed its row of the outcome table (``wrong`` says
    how, '' when it did not), left the application unable to write, or the harness failed."""
    problems = [wrong] if wrong else []
    if r.evidence.liveness_ok is False:
        problems.append("the application was left unable to write after the cycle")
    if r.error:
        problems.append(f"harness: {r.error}")
    if problems:
        raise CheckFailed(
            f"{label}: "
            + "; ".join(problems)
            + "\n"
            + explain(r.to_dict(), "the outcome table's row")
        )


def _fault(
    ctx: Context,
    key: str,
    status: int,
    health: int,
    label: str,
    settings: Settings | None = None,
    hooks: Hooks | None = None,
) -> RunResult:
    """Run the fault cycle ``key``; CheckFailed unless it got the outcome table's row."""
    r = ctx.cycle(key, settings, hooks, expected=Expected.outcome(status, health))
    _expect(r, status, health, label)
    return r


def _fault_pre_hangs(ctx: Context) -> None:
    """A pre-script that hangs past its timeout gets the outcome table's row (status 1,
    health code 308) and leaves the application writable."""
    s = _with_script(
        ctx,
        "pre",
        "sleep 30\n",
        timeoutInSeconds=2,
        ScriptsExecutionPollTimeSeconds=1,
        continueBackupOnFailure=True,
        fsFreezeEnabled=True,
    )
    _fault(ctx, "fault-pre-hangs", 1, codes.PRE_TIMEOUT, "pre-script hangs", s)


def _fault_pre_fails(ctx: Context) -> None:
    """A pre-script that fails gets the outcome table's row (status 1, health code 300)."""
    s = _with_script(
        ctx,
        "pre",
        "echo 'simulated failure' >&2\nexit 1\n",
        continueBackupOnFailure=True,
        fsFreezeEnabled=True,
    )
    _fault(ctx, "fault-pre-fails", 1, codes.PRE_FAILED, "pre-script fails", s)


def _fault_post_fails(ctx: Context) -> None:
    """A post-script that fails (after running the user's own) gets the outcome table's row
    (status 1, health code 301) and the application stays writable."""
    # The user's own post-script runs first (it releases what the pre-script holds), then the
    # script fails: what is tested is the framework's handling of a failed post-script, not a
    # lock that nothing releases (the liveness check covers that for the real post-script).
    body = "exit 3\n"
    user_post = ctx.settings.post or _config_value(ctx.settings, "postScriptLocation")
    with contextlib.suppress(OSError, TypeError, UnicodeDecodeError):
        body = f'sh -c {shlex.quote(Path(user_post).read_text())} post.sh "$@"\nexit 3\n'
    s = _with_script(ctx, "post", body, continueBackupOnFailure=True, fsFreezeEnabled=True)
    _fault(ctx, "fault-post-fails", 1, codes.POST_FAILED, "post-script fails", s)


def _fault_post_missing(ctx: Context) -> None:
    """A post-script missing from its location gets the outcome table's row (status 1,
    health code 303)."""
    s = _with_script(ctx, "post", "exit 0\n", continueBackupOnFailure=True)
    s = s.with_(post=None)
    data = _config_data(s.config) if s.config else {}
    data["postScriptLocation"] = "/etc/azure/vmsnap-missing-post.sh"
    assert s.config is not None
    s.config.write_text(json.dumps(data))
    _fault(ctx, "fault-post-missing", 1, codes.POST_NOT_FOUND, "post-script missing", s)


def _fault_snapshot_fails(ctx: Context) -> None:
    """A snapshot that fails after the freeze gets the outcome table's row (status and health
    code 2), and the file systems were frozen and thawed cleanly."""
    r = _fault(
        ctx,
        "fault-snapshot-fails",
        codes.ERROR,
        codes.ERROR,
        "snapshot fails after freeze",
        hooks={
            "snapshot": lambda: SnapshotResult(
                codes.ERROR, False, "injected", message="snapshot failure injected after the freeze"
            )
        },
    )
    freeze = r.cycle.freeze if r.cycle else {}
    if not freeze.get("frozen") or freeze.get("thaw_code") not in (0, None):
        raise CheckFailed(
            "snapshot fails after freeze: the file systems were not frozen and "
            f"thawed cleanly: {freeze}"
        )


def _baseline(ctx: Context) -> None:
    """The crash-consistent baseline (the same snapshot with no scripts and no freeze) can be
    taken and restored, for comparison with the main cycle."""
    r = ctx.cycle(
        "baseline", ctx.settings.with_(baseline=True, quiesce="none"), expected=Expected.restored()
    )
    if r.error or r.verdict in (oracle.NOT_TAKEN, oracle.ERROR):
        raise CheckFailed(
            "the crash-consistent baseline (no scripts, no freeze) could not be "
            "taken and restored:\n" + explain(r.to_dict(), oracle.CRASH)
        )


def _azure_faults() -> list[Check]:
    return [
        Check("fault-pre-hangs", "fault: pre-script hangs past its timeout", _fault_pre_hangs),
        Check("fault-pre-fails", "fault: pre-script fails", _fault_pre_fails),
        Check("fault-post-fails", "fault: post-script fails", _fault_post_fails),
        Check("fault-post-missing", "fault: post-script missing", _fault_post_missing),
        Check("fault-snapshot-fails", "fault: snapshot fails after freeze", _fault_snapshot_fails),
    ]


def battery(settings: Settings) -> list[Check]:
    """The checks for these settings, in the order they run."""
    from .faults import checks as framework_faults

    window = settings.worst_window_s
    whose = "the extension's" if settings.framework == "azure" else f"{settings.framework}'s"
    return [
        Check("lint", f"{whose} pre-check accepts the config and scripts", _lint, False),
        Check("main", "cycle under load is application-consistent", _main_cycle),
        Check("quiesce", "quiesce probe", _quiesce),
        Check("liveness", "liveness after post-script", _liveness),
        *(
            [Check("worst-window", f"worst-case window: capture held {window:g} s", _worst_window)]
            if window > 0
            else []
        ),
        *(_azure_faults() if settings.framework == "azure" else framework_faults(settings)),
        Check(
            "baseline",
            "crash-consistent baseline for comparison (no scripts, no freeze)",
            _baseline,
        ),
    ]
