"""The zero-code battery: the checks ``pytest --vmsnap`` collects from the user's settings.

Each check runs one or more vmsnap cycles and raises :class:`CheckFailed` with a short,
readable explanation when its expectation is not met. Cycles that several checks share (the
main cycle under load feeds the cycle, quiesce and liveness checks) run once per session.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cycle.result import RunResult
from ..cycle.run import Hooks, run
from ..evidence import oracle
from ..framework import codes
from ..framework.interfaces import SnapshotResult
from ..report.text import explain
from ..settings import Settings


class CheckFailed(Exception):
    """A check's expectation was not met; the message is what the user reads."""


@dataclass
class Context:
    """Shared state of one pytest session's battery."""

    settings: Settings
    runs: dict[str, RunResult] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)
    """Keys of the cycles the current check ran or looked at."""
    _faults: Path | None = None

    def fault_dir(self) -> Path:
        """A fresh directory for one fault's files, removed with the session's context."""
        if self._faults is None:
            self._faults = Path(tempfile.mkdtemp(prefix="vmsnap-fault-"))
            # The battery has no end hook of its own: remove the files with the context.
            weakref.finalize(self, shutil.rmtree, self._faults, True)
        return Path(tempfile.mkdtemp(dir=self._faults))

    def cycle(
        self,
        key: str,
        settings: Settings | None = None,
        hooks: Hooks | None = None,
    ) -> RunResult:
        """Run (once) and remember the cycle called ``key``."""
        if key not in self.runs:
            self.runs[key] = run(settings or self.settings, hooks=hooks)
        self.used.append(key)
        return self.runs[key]


@dataclass(frozen=True)
class Check:
    """One collected item: a readable name and the function that checks it."""

    name: str
    func: Callable[[Context], None]
    needs_vm: bool = True


def _lint(ctx: Context) -> None:
    from ..cycle.stage import stage
    from ..lint import lint

    s = ctx.settings
    assert s.config is not None
    with tempfile.TemporaryDirectory(prefix="vmsnap-lint-") as root:
        stage(root, s.config, s.pre, s.post, s.owner)
        report = lint(root, profile=s.profile)
    if report.errors:
        raise CheckFailed(report.format_text())


def _main_cycle(ctx: Context) -> None:
    r = ctx.cycle("main")
    if r.verdict != oracle.APPLICATION:
        raise CheckFailed(explain(r.to_dict(), oracle.APPLICATION))


def _quiesce(ctx: Context) -> None:
    r = ctx.cycle("main")
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
    s = ctx.settings
    r = ctx.cycle("window", s.with_(window_s=s.worst_window_s))
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
    r = ctx.cycle("main")
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
    problems = []
    if r.status != status or r.health_code != health:
        problems.append(
            f"expected status {status} and health code {health} "
            f"({codes.lookup(health).docs_name or codes.lookup(health).name}), got "
            f"status {r.status} and health code {r.health_code}"
        )
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


def _fault_pre_hangs(ctx: Context) -> None:
    s = _with_script(
        ctx,
        "pre",
        "sleep 30\n",
        timeoutInSeconds=2,
        ScriptsExecutionPollTimeSeconds=1,
        continueBackupOnFailure=True,
        fsFreezeEnabled=True,
    )
    _expect(ctx.cycle("fault-pre-hangs", s), 1, codes.PRE_TIMEOUT, "pre-script hangs")


def _fault_pre_fails(ctx: Context) -> None:
    s = _with_script(
        ctx,
        "pre",
        "echo 'simulated failure' >&2\nexit 1\n",
        continueBackupOnFailure=True,
        fsFreezeEnabled=True,
    )
    _expect(ctx.cycle("fault-pre-fails", s), 1, codes.PRE_FAILED, "pre-script fails")


def _fault_post_fails(ctx: Context) -> None:
    # The user's own post-script runs first (it releases what the pre-script holds), then the
    # script fails: what is tested is the framework's handling of a failed post-script, not a
    # lock that nothing releases (the liveness check covers that for the real post-script).
    body = "exit 3\n"
    user_post = ctx.settings.post or _config_value(ctx.settings, "postScriptLocation")
    with contextlib.suppress(OSError, TypeError, UnicodeDecodeError):
        body = f'sh -c {shlex.quote(Path(user_post).read_text())} post.sh "$@"\nexit 3\n'
    s = _with_script(ctx, "post", body, continueBackupOnFailure=True, fsFreezeEnabled=True)
    _expect(ctx.cycle("fault-post-fails", s), 1, codes.POST_FAILED, "post-script fails")


def _fault_post_missing(ctx: Context) -> None:
    s = _with_script(ctx, "post", "exit 0\n", continueBackupOnFailure=True)
    s = s.with_(post=None)
    data = _config_data(s.config) if s.config else {}
    data["postScriptLocation"] = "/etc/azure/vmsnap-missing-post.sh"
    assert s.config is not None
    s.config.write_text(json.dumps(data))
    _expect(ctx.cycle("fault-post-missing", s), 1, codes.POST_NOT_FOUND, "post-script missing")


def _fault_snapshot_fails(ctx: Context) -> None:
    r = ctx.cycle(
        "fault-snapshot-fails",
        hooks={
            "snapshot": lambda: SnapshotResult(
                codes.ERROR, False, "injected", message="snapshot failure injected after the freeze"
            )
        },
    )
    _expect(r, codes.ERROR, codes.ERROR, "snapshot fails after freeze")
    freeze = r.cycle.freeze if r.cycle else {}
    if not freeze.get("frozen") or freeze.get("thaw_code") not in (0, None):
        raise CheckFailed(
            "snapshot fails after freeze: the file systems were not frozen and "
            f"thawed cleanly: {freeze}"
        )


def _baseline(ctx: Context) -> None:
    r = ctx.cycle("baseline", ctx.settings.with_(baseline=True, quiesce="none"))
    if r.error or r.verdict in (oracle.NOT_TAKEN, oracle.ERROR):
        raise CheckFailed(
            "the crash-consistent baseline (no scripts, no freeze) could not be "
            "taken and restored:\n" + explain(r.to_dict(), oracle.CRASH)
        )


def battery(settings: Settings) -> list[Check]:
    """The checks for these settings, in the order they run."""
    return [
        Check("lint", _lint, needs_vm=False),
        Check("cycle under load is application-consistent", _main_cycle),
        Check("quiesce probe", _quiesce),
        Check("liveness after post-script", _liveness),
        *(
            [Check(f"worst-case window: capture held {settings.worst_window_s:g} s", _worst_window)]
            if settings.worst_window_s > 0
            else []
        ),
        Check("fault: pre-script hangs past its timeout", _fault_pre_hangs),
        Check("fault: pre-script fails", _fault_pre_fails),
        Check("fault: post-script fails", _fault_post_fails),
        Check("fault: post-script missing", _fault_post_missing),
        Check("fault: snapshot fails after freeze", _fault_snapshot_fails),
        Check("crash-consistent baseline for comparison (no scripts, no freeze)", _baseline),
    ]
