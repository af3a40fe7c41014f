"""Errors raised by the VM layer: one clear message, never a traceback for the user."""


class VmError(RuntimeError):
    """A VM operation failed; the message names the command and what it printed."""
