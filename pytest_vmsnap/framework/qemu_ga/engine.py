"""qemu-ga's engine: the host's ``guest-fsfreeze-freeze`` (hook ``freeze``, then FIFREEZE),
the snapshot, ``guest-fsfreeze-thaw`` (FITHAW, then hook ``thaw``), and the outcome table.

qemu/qemu ``qga/commands-posix.c``: ``qmp_guest_fsfreeze_freeze_list`` runs the hook with
``freeze`` first and returns its error at once (nothing frozen); otherwise it freezes, and
when FIFREEZE fails it calls ``qmp_guest_fsfreeze_thaw(NULL)`` itself, which runs the hook
with ``thaw``. ``qmp_guest_fsfreeze_thaw`` thaws first and runs the hook with ``thaw``
after, returning the hook's error as the command's error (the file systems are thawed by
then). What the host makes of those answers is :mod:`.hosts`.

Outcome table (``status`` / ``outcome``), libvirt unless noted:

=========================  ==============  ======================================
what happened              status          outcome
=========================  ==============  ======================================
all went well              APPLICATION     QUIESCED
wrapper hid a failure      APPLICATION     HOOK_FAILURE_HIDDEN
hook not enabled           NOT_QUIESCED    HOOK_NOT_ENABLED
wrapper ran no script      NOT_QUIESCED    NO_HOOK_SCRIPT
freeze ended early         NOT_QUIESCED    THAWED_EARLY
agent does not start       NO_SNAPSHOT     AGENT_NOT_RUNNING (Proxmox: NOT_QUIESCED)
freeze hook failed         NO_SNAPSHOT     FREEZE_HOOK_FAILED (Proxmox: NOT_QUIESCED)
hook never ends            NO_SNAPSHOT     HOOK_HUNG (Proxmox: NOT_QUIESCED on freeze)
FIFREEZE failed            NO_SNAPSHOT     FREEZE_FAILED (Proxmox: NOT_QUIESCED)
snapshot failed            NO_SNAPSHOT     SNAPSHOT_FAILED
thaw hook failed           NO_SNAPSHOT     THAW_HOOK_FAILED (Proxmox: APPLICATION)
=========================  ==============  ======================================
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import Generated, Given, Hosting, Observer, Placement
from ..interfaces import Freezer, NoOpFreezer, NoOpSnapshotter, Snapshotter
from ..outcome import (
    APPLICATION,
    NO_SNAPSHOT,
    NOT_QUIESCED,
    Call,
    FrameworkCycle,
    Timeline,
    freeze,
    snapshot,
    thaw,
)
from ..records import Finding
from ..scripts import Clock, Pacing, ScriptResult, Spawn, SystemClock
from . import agent, checks, hosts
from .checks import finding
from .config import CONF, DEFAULT_HOOK, parse_keyfile, unescape
from .discovery import DIRECT, HOOK_DIR_NAME, WRAPPER, Entry, executable_by_root, inside
from .environment import WORKING_DIRECTORY, script_env
from .runner import Run, run
from .wrapper import run_wrapper

HOOK_BOUND_S = 600.0
"""The harness's bound on one hook run. qemu-ga has none; 10 minutes is what Proxmox VE's
2025 fsfreeze helper allows a freeze before it stops waiting (pve-devel, "agent: implement
fsfreeze helper to better handle lost commands", 2025-09)."""

APPLICATION_OUTCOMES = ("QUIESCED", "HOOK_FAILURE_HIDDEN")


PAIR_PRE = "/usr/local/sbin/qga-pre-script"
PAIR_POST = "/usr/local/sbin/qga-post-script"
PAIR_HOOK = "50-pre-post"
PAIR_DISPATCHER = f"""#!/bin/sh
# Written by vmsnap: qemu-ga calls one hook with freeze or thaw; this runs the pre-script for
# freeze and the post-script for thaw (the smallest dispatcher a user must write for a pair).
case "$1" in
  freeze) exec {PAIR_PRE} ;;
  thaw) exec {PAIR_POST} ;;
esac
exit 0
""".encode()


@dataclass
class _Hook:
    """One verb's hook run, as the agent answered it."""

    error: str = ""
    hung: str = ""
    hidden: list[str] = field(default_factory=list)
    ran: int = 0


@dataclass(frozen=True)
class QemuGaEngine:
    """qemu-guest-agent's fsfreeze hook under a host that asks for a quiesced snapshot."""

    agent_version: str = agent.DEFAULT
    """:data:`.agent.QEMU_7_2` (Debian 12) or :data:`.agent.QEMU_10_0` (QEMU >= 9.1)."""
    host_tool: str = hosts.LIBVIRT
    """:data:`.hosts.LIBVIRT` (the default: no snapshot when the quiesce fails) or
    :data:`.hosts.PROXMOX`."""
    hook_bound_s: float = HOOK_BOUND_S
    """How long the harness waits for one hook run; the real agent waits without end."""
    name: str = "qemu-ga"
    title: str = "qemu-guest-agent fsfreeze hook (libvirt, Proxmox VE, oVirt)"

    def host(self, given: Given) -> Hosting:
        """The hook goes into ``fsfreeze-hook.d`` next to the hook path (the stock wrapper
        runs it); the config to ``/etc/qemu/qemu-ga.conf``, or a minimal one is written."""
        pair = {"pre", "post"} <= given.roles and "hook" not in given.roles
        if not pair and ("pre" in given.roles or "post" in given.roles):
            return Hosting(
                refused="qemu-ga calls one hook with 'freeze' and later 'thaw': give both a "
                "pre- and a post-script (a dispatcher runs them), or one hook"
            )
        if not pair and "hook" not in given.roles:
            return Hosting(refused="qemu-ga runs a hook: give the hook script")
        hook_path = _config_hook(given.config) if "config" in given.roles else DEFAULT_HOOK
        directory = f"{os.path.dirname(hook_path or DEFAULT_HOOK).rstrip('/')}/{HOOK_DIR_NAME}"
        name = os.path.basename(given.hook_name) or "hook"
        placements = [Placement("hook", f"{directory}/{name}")]
        generated: tuple[Generated, ...] = ()
        if pair:
            placements = [Placement("pre", PAIR_PRE), Placement("post", PAIR_POST)]
            generated = (
                Generated(
                    f"{directory}/{PAIR_HOOK}",
                    PAIR_DISPATCHER,
                    0o755,
                    "qemu-ga calls one hook with 'freeze' or 'thaw': this dispatcher runs the "
                    "pre-script for freeze and the post-script for thaw, the smallest one a "
                    "user must write to run a pair",
                ),
            )
        if "config" in given.roles:
            placements.insert(0, Placement("config", CONF))
        else:
            generated += (
                Generated(
                    CONF,
                    checks.minimal_config(),
                    0o644,
                    "qemu-ga runs no hook unless -F or the fsfreeze-hook key enables one, and "
                    "Debian's qemu-guest-agent.service starts it with no options: these two "
                    "lines are the least a machine needs",
                ),
            )
        return Hosting(
            placements=tuple(placements),
            generated=generated,
            calls=f"{hook_path or DEFAULT_HOOK} freeze; {hook_path or DEFAULT_HOOK} thaw "
            f"(the wrapper runs {directory}/* with the same verb, same order"
            + (f"; {PAIR_HOOK} execs the pre- or the post-script)" if pair else ")"),
        )

    def precheck(self, root: Path) -> list[Finding]:
        return checks.precheck(root, self.agent_version).findings

    def run_cycle(
        self,
        root: Path | str,
        *,
        freezer: Freezer | None = None,
        snapshotter: Snapshotter | None = None,
        clock: Clock | None = None,
        spawn: Spawn | None = None,
        pacing: Pacing | None = None,
        observer: Observer | None = None,
        env: Mapping[str, str] | None = None,
    ) -> FrameworkCycle:
        """One quiesced snapshot as the host asks for it (``pacing`` changes nothing: neither
        qemu-ga nor libvirt has a coded delay between the steps)."""
        return _Cycle(self, Path(root), freezer, snapshotter, clock, spawn, observer, env).run()


class _Cycle:
    def __init__(
        self,
        engine: QemuGaEngine,
        root: Path,
        freezer: Freezer | None,
        snapshotter: Snapshotter | None,
        clock: Clock | None,
        spawn: Spawn | None,
        observer: Observer | None,
        env: Mapping[str, str] | None,
    ) -> None:
        self.e = engine
        self.root = root
        self.freezer = freezer or NoOpFreezer()
        self.snapshotter = snapshotter or NoOpSnapshotter()
        self.clock = clock or SystemClock()
        self.spawn = spawn
        self.env = script_env(env)
        self.result = FrameworkCycle(
            engine.name,
            freezes=True,
            real_freeze=getattr(self.freezer, "real", True),
            real_snapshot=getattr(self.snapshotter, "real", True),
        )
        self.tl = Timeline(self.result, self.clock, observer or (lambda event: None))
        self.pc: checks.Precheck | None = None
        self.hidden: list[str] = []

    @property
    def proxmox(self) -> bool:
        return self.e.host_tool == hosts.PROXMOX

    def run(self) -> FrameworkCycle:
        r, tl = self.result, self.tl
        start = tl.now()
        self.pc = pc = checks.precheck(self.root, self.e.agent_version)
        r.findings.extend(pc.findings)
        r.precheck_log = [f["message"] for f in pc.findings]
        tl.mark("precheck", start)
        tl.notify("precheck_end")
        if not pc.config.starts:
            if self.proxmox:
                self._snapshot_unfrozen()
                return self._end(
                    NOT_QUIESCED,
                    "AGENT_NOT_RUNNING",
                    "qemu-ga is not running (its config does not load): Proxmox VE skips the "
                    "freeze and backs up without it",
                )
            return self._end(
                NO_SNAPSHOT,
                "AGENT_NOT_RUNNING",
                "qemu-ga is not running (its config does not load): libvirt cannot quiesce, "
                "so it takes no snapshot",
            )

        start = tl.now()
        tl.notify("pre_start")
        pre = self._hook("freeze")
        tl.mark("pre", start)
        tl.notify("pre_end")
        r.pre = r.side(("freeze",))
        if pre.error or pre.hung:
            return self._freeze_refused(pre)

        if not freeze(r, self.freezer, tl):
            # FIFREEZE failed: qemu-ga thaws and runs the thaw hook itself (ret < 0).
            r.findings.append(
                finding(
                    "FREEZE_FAILED",
                    f"FIFREEZE failed: {r.freeze.message if r.freeze else ''}; qemu-ga "
                    "thawed what it had frozen and ran the hook with 'thaw'",
                    "Check that every mounted file system can be frozen (FIFREEZE).",
                )
            )
            self._post()
            if self.proxmox:
                self._snapshot_unfrozen(thaw_hook=True)
                return self._end(
                    NOT_QUIESCED,
                    "FREEZE_FAILED",
                    "the freeze failed: Proxmox VE logs it and backs up without it",
                )
            return self._end(NO_SNAPSHOT, "FREEZE_FAILED", "the freeze failed: no snapshot")

        snap_ok = False
        try:
            snap_ok = snapshot(r, self.snapshotter, tl)
        finally:
            thaw_ok = thaw(r, self.freezer, tl)
            post = self._post()
        return self._judge(snap_ok, thaw_ok, post)

    def _judge(self, snap_ok: bool, thaw_ok: bool, post: _Hook) -> FrameworkCycle:
        r = self.result
        if not snap_ok:
            msg = r.snapshot.message if r.snapshot else ""
            r.findings.append(
                finding(
                    "SNAPSHOT_FAILED", f"the snapshot failed: {msg}", "See the backend's message."
                )
            )
            return self._end(NO_SNAPSHOT, "SNAPSHOT_FAILED", "the snapshot failed")
        if post.error or post.hung:
            said = post.hung or post.error
            r.findings.append(
                finding(
                    "THAW_HOOK_FAILED",
                    f"guest-fsfreeze-thaw failed: {said}",
                    "Make the hook's thaw side succeed (exit 0) and end promptly.",
                )
            )
            if not self.proxmox:
                return self._end(
                    NO_SNAPSHOT,
                    "THAW_HOOK_FAILED",
                    "the file systems were thawed but the thaw hook failed, so libvirt "
                    "reports the snapshot as failed"
                    + (" (the real agent would still be waiting for it)" if post.hung else ""),
                )
        if not thaw_ok:
            r.findings.append(
                finding(
                    "THAWED_EARLY",
                    "the harness's freeze guard thawed before the snapshot ended "
                    f"({r.thaw.message if r.thaw else ''}); the real agent keeps the file "
                    "systems frozen until the host's thaw",
                    "Shorten the snapshot, or raise the guard's limit.",
                )
            )
            return self._end(NOT_QUIESCED, "THAWED_EARLY", "the freeze ended before the snapshot")
        pc = self.pc
        if pc is not None and pc.config.hook is None:
            return self._end(
                NOT_QUIESCED,
                checks.HOOK_NOT_ENABLED,
                "a frozen snapshot without any hook: qemu-ga has no fsfreeze hook enabled",
            )
        if (
            pc is not None
            and pc.plan is not None
            and pc.plan.kind == WRAPPER
            and not pc.plan.scripts
        ):
            return self._end(
                NOT_QUIESCED,
                checks.NO_HOOK_SCRIPT,
                "a frozen snapshot: the wrapper found no script to run",
            )
        if self.hidden:
            r.findings.append(
                finding(
                    "HOOK_FAILURE_HIDDEN",
                    "the fsfreeze-hook wrapper exits 0 whatever its scripts do; it hid: "
                    + "; ".join(self.hidden),
                    "Read /var/log/qga-fsfreeze-hook.log after each backup, or fail loudly "
                    "from a hook of your own at the hook path.",
                )
            )
            return self._end(
                APPLICATION,
                "HOOK_FAILURE_HIDDEN",
                "reported as a quiesced snapshot, but a hook script failed and the wrapper hid it",
            )
        if post.error or post.hung:
            return self._end(
                APPLICATION,
                "THAW_HOOK_FAILED",
                "Proxmox VE logs the failed thaw hook and keeps the backup",
            )
        return self._end(APPLICATION, "QUIESCED", "quiesced snapshot: hook, freeze, thaw, hook")

    def _freeze_refused(self, pre: _Hook) -> FrameworkCycle:
        said = pre.hung or pre.error
        outcome = "HOOK_HUNG" if pre.hung else "FREEZE_HOOK_FAILED"
        self.result.findings.append(
            finding(
                outcome,
                f"guest-fsfreeze-freeze failed: {said}",
                "Make the hook's freeze side succeed (exit 0) and end promptly: leave "
                "anything that must stay (a lock holder) in the background with its output "
                "redirected.",
            )
        )
        if self.proxmox:
            self._snapshot_unfrozen(thaw_hook=True)
            return self._end(
                NOT_QUIESCED,
                outcome,
                f"the freeze hook failed ({said}): Proxmox VE backs up without the freeze "
                "and still sends the thaw",
            )
        return self._end(
            NO_SNAPSHOT,
            outcome,
            f"the freeze hook failed ({said}): libvirt takes no snapshot and sends no thaw"
            + ("; the real agent would still be waiting for the hook" if pre.hung else ""),
        )

    def _snapshot_unfrozen(self, thaw_hook: bool = False) -> None:
        """Proxmox VE goes on without the freeze (and thaws anyway, which runs the hook)."""
        snapshot(self.result, self.snapshotter, self.tl)
        if thaw_hook:
            self._post()

    def _post(self) -> _Hook:
        start = self.tl.now()
        self.tl.notify("post_start")
        out = self._hook("thaw")
        self.tl.mark("post", start)
        self.tl.notify("post_end")
        self.result.post = self.result.side(("thaw",))
        return out

    def _hook(self, verb: str) -> _Hook:
        """Run the hook with ``verb`` as qemu-ga does; the error the command returns."""
        pc, out = self.pc, _Hook()
        if pc is None or pc.plan is None:
            return out  # no hook enabled: execute_fsfreeze_hook returns at once
        hook, version = pc.plan.hook, self.e.agent_version
        if pc.plan.kind == WRAPPER:
            w = run_wrapper(
                self.root,
                hook,
                verb,
                pc.plan.scripts,
                version=version,
                bound_s=self.e.hook_bound_s,
                env=self.env,
                cwd=WORKING_DIRECTORY,
                clock=self.clock,
                spawn=self.spawn,
            )
            for entry, one in w.runs:
                self.result.calls.append(Call(verb, entry.location, one.result))
                out.ran += 1
                if one.result.timed_out:
                    out.hung = self._hung(entry.location, one)
                elif one.result.failed:
                    out.hidden.append(_why(entry, one, verb))
            if w.exit_code:
                out.error = (
                    f"fsfreeze hook has failed with status {w.exit_code}"
                    if version == agent.QEMU_7_2
                    else f"child process has failed to execute fsfreeze hook: {w.output}"
                )
            elif w.timed_out and not out.hung:
                out.hung = f"the wrapper had not ended after {self.e.hook_bound_s:g} s"
            self.hidden.extend(out.hidden if not (out.error or out.hung) else [])
            return out
        argv = [str(inside(self.root, hook)), verb]
        if version == agent.QEMU_7_2 and (
            pc.plan.kind != DIRECT or not executable_by_root(inside(self.root, hook))
        ):
            exists = pc.plan.kind == DIRECT and inside(self.root, hook).exists()
            code = errno.EACCES if exists else errno.ENOENT
            refused = ScriptResult(verb, argv, start_s=self.clock.monotonic())
            refused.end_s, refused.error_code = refused.start_s, 1
            refused.start_error = os.strerror(code)
            self.result.calls.append(Call(verb, hook, refused))
            out.error = agent.access_error(version, hook, code)
            return out
        one = run(
            verb,
            argv,
            stdio=agent.stdio(version),
            bound_s=self.e.hook_bound_s,
            env=self.env,
            cwd=WORKING_DIRECTORY,
            clock=self.clock,
            spawn=self.spawn,
            enoexec_shell=version != agent.QEMU_7_2,
        )
        if one.exec_errno is not None:
            one.result.exit_code = agent.exec_exit_code(version)
            if version != agent.QEMU_7_2:
                one.result.stdout.add(
                    f"failed to exec '{hook}': {os.strerror(one.exec_errno)}\n".encode()
                )
        self.result.calls.append(Call(verb, hook, one.result))
        out.ran = 1
        if one.result.timed_out:
            out.hung = self._hung(hook, one)
        else:
            out.error = agent.failure(version, hook, one)
        return out

    def _hung(self, where: str, one: Run) -> str:
        bound = f"{self.e.hook_bound_s:g} s"
        if one.held_open:
            return (
                f"{where} exited, but a process it started still holds its stdout/stderr: "
                "qemu-ga >= 9.1 reads them to the end, so it would wait as long as that "
                f"process lives (the harness stopped after {bound})"
            )
        return (
            f"{where} had not ended after the harness's bound of {bound}; qemu-ga has no "
            "time limit and would wait for it forever"
        )

    def _end(self, status: int, outcome: str, message: str) -> FrameworkCycle:
        r = self.result
        r.status, r.outcome, r.message = status, outcome, message
        if r.pre is None:
            r.pre = r.side(("freeze",))
        if r.post is None:
            r.post = r.side(("thaw",))
        return r


def _why(entry: Entry, one: Run, verb: str) -> str:
    result = one.result
    if result.start_error:
        return f"{entry.location} {verb}: {result.start_error}"
    if one.signal is not None:
        return f"{entry.location} {verb}: killed by signal {one.signal}"
    return f"{entry.location} {verb}: exit status {result.exit_code}"


def _config_hook(config: bytes | None) -> str:
    """The hook path a given config enables ('' when it enables none or does not parse)."""
    try:
        general = parse_keyfile((config or b"").decode("utf-8")).get("general", {})
        return unescape(general["fsfreeze-hook"]) if "fsfreeze-hook" in general else ""
    except (ValueError, KeyError):
        return ""


def make(profile: str = "extension") -> QemuGaEngine:
    """The engine, for :func:`~pytest_vmsnap.framework.engines.get` (``profile`` is Azure's)."""
    del profile
    return QemuGaEngine()
