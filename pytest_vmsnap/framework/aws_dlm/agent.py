"""The SSM agent on the instance: how it runs one command of the document, step by step.

Read from aws/amazon-ssm-agent (mirror at 1c217c8, 2024-10):

- ``agent/plugins/runscript/runshellscript.go`` / ``runscript.go`` (``runCommands``): each
  ``aws:runShellScript`` step's ``runCommand`` lines are written to
  ``<orchestration>/<command id>/<step>/_script.sh`` and run as ``sh -c <that path>``. So sh
  executes the file: its first line, when it is a ``#!`` line, picks the interpreter; without
  one, sh (dash on Debian) runs it itself.
- ``agent/plugins/pluginutil/pluginutil.go`` (``CreateScriptFile``): lines joined by newlines,
  mode 0700 (``appconfig.ReadWriteExecuteAccess``); ``ValidateExecutionTimeout``: the step's
  ``timeoutSeconds``, default 3600, accepted from 5 to 172800 (else the default).
- ``agent/executers/executers.go`` (``ExecuteCommand``) and ``executers_unix.go``: the process
  leads its own process group (``Setpgid``); on the step's timeout the agent sends SIGKILL to
  that whole group and reports exit code 137 (``CommandStoppedPreemptivelyExitCode``), status
  TimedOut. stdout and stderr go to Go writers, not files, so ``exec.Cmd.Wait`` returns only
  once both pipes reach end-of-file: a background child that keeps the script's stdout or
  stderr open keeps the step running (until it exits or the step times out). stdin is
  ``/dev/null``. The environment is the agent's own (``os.Environ()``) plus
  ``AWS_SSM_INSTANCE_ID``, ``AWS_SSM_REGION_NAME``, ``AWS_SSM_PLATFORM_NAME``,
  ``AWS_SSM_PLATFORM_VERSION`` (``prepareEnvironment``) and ``SSM_COMMAND_ID``
  (``runscript.go``, ``setCommandIdEnvironment``).
- Working directory: the step's ``workingDirectory`` when absolute, else
  ``<orchestration>/downloads/<dir>`` when it exists, else the document worker's own, which is
  the service's ``WorkingDirectory=/usr/bin/`` (``packaging/linux/amazon-ssm-agent.service``;
  the workers are started without a directory of their own).
- ``agent/framework/runpluginutil/runpluginutil.go`` (``RunPlugins``): steps run in order and
  a failed step does not stop the next, except exit 168 (success, skip the rest), 169
  (failure, skip the rest), ``onFailure: exit|successAndExit``, and 194 (the agent reboots
  the instance before going on: ``appconfig.RebootExitCode``).
- Output kept for the command's result: the first 24000 characters of stdout and 8000 of
  stderr (``appconfig.MaxStdoutLength``/``MaxStderrLength``); the script is never blocked by
  its output (the agent reads it as it comes).

The agent's environment is the service's: systemd gives a service without ``User=`` only
``PATH`` and the locale (``LANG``), no ``HOME``, ``USER`` or ``SHELL``; the unit runs as root.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..scripts import Clock, Process, ScriptResult, Spawn, collect, kill_group, start_readers
from .document import Document, Step, precondition_skip, script_text

AGENT_CWD = "/usr/bin"
"""The agent service's ``WorkingDirectory``, which the scripts inherit."""
DATA_DIR = "/var/lib/amazon/ssm"
"""``appconfig.AgentData`` on Linux."""
INSTANCE_ID = "i-0123456789abcdef0"
REGION = "us-east-1"
DEFAULT_STEP_TIMEOUT_S = 3600
STEP_TIMEOUT_RANGE = (5, 172800)
STOPPED_EXIT = 137
"""What the agent reports for a step it killed (timeout or cancel): 128 + SIGKILL."""
EXIT_SUCCESS_SKIP_REST = 168
EXIT_FAILURE_SKIP_REST = 169
EXIT_REBOOT = 194
MAX_STDOUT = 24000
MAX_STDERR = 8000
STEP_POLL_S = 0.01

SERVICE_ENV: dict[str, str] = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
"""The agent's own environment as systemd starts the service."""


def step_timeout(raw: Any) -> int:
    """The step's timeout in seconds as the agent reads ``timeoutSeconds``
    (``pluginutil.ValidateExecutionTimeout``): an integer, a number in a string, a float cut
    to an integer; anything else, or a value outside 5..172800, is the default 3600."""
    num = 0
    if isinstance(raw, bool):
        num = 0
    elif isinstance(raw, int):
        num = raw
    elif isinstance(raw, float):
        num = int(raw)
    elif isinstance(raw, str):
        digits = "".join(ch for ch in raw if ch.isdigit())
        num = int(digits) if digits else 0
    if not STEP_TIMEOUT_RANGE[0] <= num <= STEP_TIMEOUT_RANGE[1]:
        return DEFAULT_STEP_TIMEOUT_S
    return num


def platform(root: Path) -> tuple[str, str]:
    """``AWS_SSM_PLATFORM_NAME`` and ``..._VERSION`` from the machine's ``/etc/os-release``."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in (root / "etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            fields[key.strip()] = value.strip().strip('"')
    return fields.get("NAME", "Linux"), fields.get("VERSION_ID", "")


def agent_env(root: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What every script finds in its environment under the agent (before ``SSM_COMMAND_ID``),
    with the user's ``extra`` variables on top."""
    name, version = platform(root)
    return {
        **SERVICE_ENV,
        "AWS_SSM_INSTANCE_ID": INSTANCE_ID,
        "AWS_SSM_REGION_NAME": REGION,
        "AWS_SSM_PLATFORM_NAME": name,
        "AWS_SSM_PLATFORM_VERSION": version,
        **(extra or {}),
    }


Starter = Callable[[Sequence[str], Mapping[str, str], str], Process]
"""Starts ``argv`` with this environment and working directory (the real agent's way)."""


def real_starter(argv: Sequence[str], env: Mapping[str, str], cwd: str) -> Process:
    """As ``ExecuteCommand``: own process group, stdin ``/dev/null``, stdout and stderr read."""
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=dict(env),
        process_group=0,
    )


def from_spawn(spawn: Spawn) -> Starter:
    """A test's ``spawn`` as a starter (it decides environment and directory itself)."""
    return lambda argv, env, cwd: spawn(argv)


@dataclass
class StepOutcome:
    """How one step ended, in the agent's terms."""

    name: str
    status: str = "NotStarted"
    """Success, Failed, TimedOut, Skipped, SuccessAndReboot, Cancelled."""
    exit_code: int | None = None
    detail: str = ""


@dataclass
class Command:
    """One SendCommand on the instance: the document's steps, one after the other, in a
    thread of their own (the agent keeps running them after DLM stopped waiting)."""

    root: Path
    document: Document
    values: dict[str, str]
    result: ScriptResult
    """DLM's record of this call; stdout/stderr fill in as the steps write."""
    starter: Starter
    env: Mapping[str, str]
    clock: Clock
    time_scale: float = 1.0
    command_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    steps: list[StepOutcome] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)
    current: Process | None = None
    end_s: float = 0.0
    thread: threading.Thread | None = None

    @property
    def orchestration(self) -> str:
        """The command's orchestration directory, inside the VM."""
        return f"{DATA_DIR}/{INSTANCE_ID}/document/orchestration/{self.command_id}"

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True, name="ssm-command")
        self.thread.start()

    def wait(self, timeout_s: float) -> bool:
        """Whether the command completed within ``timeout_s`` seconds."""
        return self.done.wait(timeout=max(0.0, timeout_s))

    def cancel(self) -> int | None:
        """End the command now (its current step's process group is killed); the pid it
        killed, if a step was still running."""
        self.cancelled.set()
        proc = self.current
        pid = None
        if proc is not None and proc.poll() is None:
            pid = proc.pid
            kill_group(proc)
        if self.thread is not None:
            self.thread.join(timeout=5)
        return pid

    @property
    def status(self) -> str:
        """The command's status as GetCommandInvocation reports it once it completed."""
        ran = [s for s in self.steps if s.status != "Skipped"]
        if any(s.status == "TimedOut" for s in ran):
            return "TimedOut"
        if any(s.status in ("Failed", "Cancelled", "SuccessAndReboot") for s in ran):
            return "Failed"
        return "Success"

    @property
    def exit_code(self) -> int | None:
        """The failing step's exit code, else the last step's."""
        ran = [s for s in self.steps if s.status not in ("Skipped", "NotStarted")]
        bad = [s for s in ran if s.status != "Success"]
        pick = bad[0] if bad else (ran[-1] if ran else None)
        return pick.exit_code if pick else 0

    def _run(self) -> None:
        try:
            for index, step in enumerate(self.document.steps):
                if self.cancelled.is_set():
                    break
                outcome = self._step(step, index)
                self.steps.append(outcome)
                if outcome.exit_code in (EXIT_SUCCESS_SKIP_REST, EXIT_FAILURE_SKIP_REST):
                    self.result.log.append(
                        f"step {step.name} exited {outcome.exit_code}: further steps skipped"
                    )
                    break
                if outcome.status == "SuccessAndReboot":
                    break
                if outcome.status == "Failed" and step.on_failure in ("exit", "successAndExit"):
                    if step.on_failure == "successAndExit":
                        outcome.status = "Success"
                    self.result.log.append(f"step {step.name} has onFailure: further steps skipped")
                    break
        finally:
            self.end_s = self.clock.monotonic()
            self.done.set()

    def _step(self, step: Step, index: int) -> StepOutcome:
        out = StepOutcome(step.name)
        skip = precondition_skip(step, self.values)
        if skip is not None:
            if skip.startswith("FAIL: "):
                out.status, out.detail = "Failed", skip[6:]
            else:
                out.status, out.detail = "Skipped", skip
            self.result.log.append(f"step {step.name}: {out.detail}")
            return out
        step_dir = f"{self.orchestration}/{step.name.replace('/', '_') or index}"
        script = f"{step_dir}/_script.sh"
        host_script = self.root / script.lstrip("/")
        host_script.parent.mkdir(parents=True, exist_ok=True)
        host_script.write_text(script_text(step, self.values))
        host_script.chmod(0o700)
        argv = ["sh", "-c", str(host_script)]
        if self.result.argv is None:
            self.result.argv = ["sh", "-c", script]
        env = {**self.env, "SSM_COMMAND_ID": self.command_id}
        cwd = self._cwd(step)
        limit = step_timeout(step.timeout) * self.time_scale
        try:
            proc = self.starter(argv, env, cwd)
        except OSError as err:
            out.status, out.exit_code = "Failed", 1
            out.detail = f"could not start sh: {err.strerror or err}"
            self.result.log.append(f"step {step.name}: {out.detail}")
            return out
        self.current = proc
        self.result.ran = True
        readers = start_readers(proc, self.result)
        started = time.monotonic()
        while True:
            exited = proc.poll() is not None
            if exited and not any(r.is_alive() for r in readers):
                break  # Wait() returns: the process ended and both pipes reached EOF
            if self.cancelled.is_set():
                kill_group(proc)
                out.status, out.exit_code = "Cancelled", STOPPED_EXIT
                out.detail = "ended by the harness when the cycle ended"
                break
            if time.monotonic() - started >= limit:
                kill_group(proc)
                out.status, out.exit_code = "TimedOut", STOPPED_EXIT
                out.detail = (
                    f"the agent's step timeout ({step_timeout(step.timeout)} s) passed"
                    + (" while a child still held the script's output open" if exited else "")
                    + ": process group killed"
                )
                break
            time.sleep(STEP_POLL_S)
        collect(proc, self.result, readers)
        self.current = None
        if out.status == "NotStarted":
            out.exit_code = _exit_code(proc.returncode)
            out.status = _status(out.exit_code)
        self.result.log.append(
            f"step {step.name}: {out.status} (exit {out.exit_code})"
            + (f": {out.detail}" if out.detail else "")
        )
        return out

    def _cwd(self, step: Step) -> str:
        wd = step.working_directory
        if wd.startswith("/"):
            path = self.root / wd.lstrip("/")
        else:
            path = self.root / f"{self.orchestration}/downloads/{wd}".lstrip("/")
            if not path.is_dir():
                path = self.root / AGENT_CWD.lstrip("/")
        path.mkdir(parents=True, exist_ok=True)
        return str(path)


def _exit_code(returncode: int | None) -> int:
    """Go's ``WaitStatus.ExitStatus()``: the code, or -1 for a process killed by a signal."""
    if returncode is None:
        return -1
    return returncode if returncode >= 0 else -1


def _status(code: int) -> str:
    """``pluginutil.GetStatus`` (unix), plus 168 and 169 as ``RunPlugins`` reads them."""
    if code in (0, EXIT_SUCCESS_SKIP_REST):
        return "Success"
    if code == EXIT_REBOOT:
        return "SuccessAndReboot"
    if code == STOPPED_EXIT:
        return "TimedOut"  # GetStatus reads 137 as "stopped by timeout", whoever exited 137
    return "Failed"
