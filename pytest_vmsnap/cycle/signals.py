"""SIGTERM and SIGINT during a cycle unwind it at once, so every resource is released on the
way out, within seconds: what would wait politely (the workload's graceful stop, the agent's
end) is killed instead while :func:`unwinding`."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_UNWINDING = threading.Event()


class Terminated(BaseException):
    """SIGTERM arrived during a cycle: unwind (releasing every resource), then re-raise."""


def unwinding() -> bool:
    """A signal asked this process to end: release without waiting for anyone."""
    return _UNWINDING.is_set()


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` and SIGINT into KeyboardInterrupt while a cycle
    runs, so ``finally`` blocks release the VM, its mounts and loop devices (thawing first)
    instead of the process dying with them in place.

    Only the main thread can take signals; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: object) -> None:
        _UNWINDING.set()
        raise Terminated()

    def on_int(signum: int, frame: object) -> None:
        _UNWINDING.set()
        raise KeyboardInterrupt()

    previous = signal.signal(signal.SIGTERM, on_term), signal.signal(signal.SIGINT, on_int)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
        _UNWINDING.clear()
