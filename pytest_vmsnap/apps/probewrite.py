"""One probe write, watched: accepted, refused, or blocked on a lock someone else holds.

The quiesce probe must tell a write held by the pre-script's lock from a write that is only
slow. Waiting out a fixed timeout makes every cycle pay that timeout (it lies between the end
of the pre-script and the freeze), and a short one calls a slow write "blocked" on a loaded
machine. So the write is made on its own fresh connection in a worker thread while the probe
looks at it from another connection, the way the store shows a waiting session: PostgreSQL's
``pg_stat_activity`` and ``pg_blocking_pids``, MariaDB's process list ("Waiting for backup
lock"), Redis's ``CLIENT LIST`` (a paused client's write is postponed, flag ``b``), the kernel's
lock table for SQLite's write lock. Seen waiting on a lock for ``confirm_s`` without a break,
the write is "blocked" with that evidence, and is cancelled so that it never lands. Without
such evidence the write's own timeout decides, as before.
"""

from __future__ import annotations

import contextlib
import threading
import time
from abc import ABC, abstractmethod

Outcome = tuple[str, str]
"""``("accepted" | "blocked" | "refused" | "error", detail)``; "error": the harness failed."""

LOOK_AFTER_S = 0.02
"""The first look: a write that has not finished by then may be waiting on something."""
CONFIRM_S = 0.05
"""How long a write must be seen waiting on a lock, without a break, to be called blocked."""
STEP_S = 0.01
ABANDON_GRACE_S = 0.5
"""How long the worker may take to return once its write was cancelled."""


def one_line(err: BaseException | str) -> str:
    """An error as one short line."""
    return " ".join(str(err).split())[:300]


HARNESS_ERRORS = (
    ImportError,
    TypeError,
    AttributeError,
    NameError,
    LookupError,
    AssertionError,
    NotImplementedError,
    RecursionError,
)
"""Exceptions of the harness's own code or of its client library (a missing module, an
argument the library does not take): not an answer of the store, so never "refused"."""


def harness_fault(err: BaseException) -> str | None:
    """The probe's "error" detail when ``err`` is the harness's own failure, else None."""
    if isinstance(err, HARNESS_ERRORS):
        return f"the harness's probe failed: {type(err).__name__}: {one_line(err)}"
    return None


def no_connection(err: BaseException, took_s: float, timeout_s: float) -> Outcome:
    """A probe that could not even connect: "error" when the harness failed (its client
    library, say), blocked when the store gave no answer within the timeout (``CLIENT PAUSE
    ALL`` holds a handshake too), refused when it said no at once."""
    fault = harness_fault(err)
    if fault:
        return "error", fault
    if took_s >= timeout_s:
        return "blocked", f"no answer to a new connection within {took_s:.2f} s: {one_line(err)}"
    return "refused", f"cannot connect: {one_line(err)}"


class ProbeWrite(ABC):
    """One write on its own fresh connection, watched from outside that connection."""

    @abstractmethod
    def attempt(self) -> Outcome:
        """Make the write and wait for it (in a worker thread), bounded by the probe's
        timeout: "blocked" when that fired, "refused" when the store said no."""

    @abstractmethod
    def waiting_on(self) -> str | None:
        """What the write is waiting for, as the store shows it to another connection (a
        lock another session holds), or None when it is not waiting on a lock."""

    @abstractmethod
    def abandon(self) -> None:
        """Cancel the write so that it never lands (the worker's attempt then returns)."""

    def close(self) -> None:  # noqa: B027 - most probes have a connection to close
        """Release the probe's own connection (called once the attempt has returned)."""


def watch(
    write: ProbeWrite,
    timeout_s: float,
    *,
    look_after_s: float = LOOK_AFTER_S,
    confirm_s: float = CONFIRM_S,
) -> Outcome:
    """Run ``write.attempt()`` and judge it: its own outcome, or "blocked" once the store has
    shown it waiting on a lock for ``confirm_s``, or when it has not returned a grace period
    after ``timeout_s``."""
    outcome: list[Outcome] = []

    def run() -> None:
        try:
            outcome.append(write.attempt())
        except Exception as err:  # never leave the probe without an answer
            fault = harness_fault(err)
            outcome.append(
                ("error", fault) if fault else ("refused", f"{type(err).__name__}: {one_line(err)}")
            )

    worker = threading.Thread(target=run, name="vmsnap-probe-write", daemon=True)
    began = time.monotonic()
    worker.start()
    seen_since: float | None = None
    while True:
        worker.join(STEP_S)
        if outcome:
            with contextlib.suppress(Exception):
                write.close()
            return outcome[0]
        waited = time.monotonic() - began
        if waited >= timeout_s + ABANDON_GRACE_S:
            why = f"no answer from the server within {timeout_s:.1f} s"
            break
        if waited < look_after_s:
            continue
        try:
            what = write.waiting_on()
        except Exception:  # the observer is best effort: the timeout still decides
            what = None
        if what is None:
            seen_since = None
        elif seen_since is None:
            seen_since = waited
        elif waited - seen_since >= confirm_s:
            why = f"{what} (seen waiting for {waited:.2f} s, then cancelled)"
            break
    with contextlib.suppress(Exception):
        write.abandon()
    worker.join(ABANDON_GRACE_S)
    if not worker.is_alive():
        # A connection whose call is stuck (a backend waiting on a frozen disk) is left to
        # the process's exit instead: closing it could block as well.
        with contextlib.suppress(Exception):
            write.close()
    return "blocked", why
