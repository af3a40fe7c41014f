"""Probes run inside the stand-in VM, each on a fresh connection in one role: the application
user (``app``) or a privileged user (``privileged``: root/SUPER, the superuser, Redis's default
user, another SQLite process; see :data:`pytest_vmsnap.apps.base.ROLES`).

The harness calls them through the VM's fork server
(``vm.call("pytest_vmsnap.evidence.probe:...")``), once per role; each is also a command,
printing one JSON object: ``python -m pytest_vmsnap.evidence.probe write --app APP --timeout S
[--role ROLE]``: the quiesce-effectiveness probe (one write, watched: accepted, blocked or
refused; see :mod:`pytest_vmsnap.apps.probewrite`).
``python -m pytest_vmsnap.evidence.probe live --app APP --bound S [--role ROLE]``: the liveness
probe (writes must succeed again within the bound).
``python -m pytest_vmsnap.evidence.probe state --app APP``: what the oracle reads from a
restored store.

A probe's answer carries its ``role``; a refused write also says whether the store refused it
only for being read-only (``read_only``), which a privileged writer may ignore. A probe the
harness itself failed to make (its client library missing, say) is ``"error"``, never
"refused": the oracle's verdict is then ``error``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

from ..apps import get_app
from ..apps.base import APP_ROLE, ROLES, Role
from ..apps.probewrite import harness_fault, no_connection, one_line


def probe_write(app: str, timeout_s: float, role: Role = APP_ROLE) -> dict[str, object]:
    """One write attempt on a fresh connection in ``role``."""
    began = time.monotonic()
    store = get_app(app)
    try:
        client = store.client(timeout_s, role)
    except Exception as err:
        took = time.monotonic() - began
        result, detail = no_connection(err, took, timeout_s)
        return _answer(role, result, detail, began, took, read_only=False)
    try:
        result, detail = client.probe_write(timeout_s)
    except Exception as err:
        fault = harness_fault(err)
        result, detail = ("error", fault) if fault else ("refused", one_line(err))
    finally:
        with contextlib.suppress(Exception):
            client.close()
    read_only = result == "refused" and store.read_only(detail)
    return _answer(role, result, detail, began, time.monotonic() - began, read_only=read_only)


def _answer(
    role: Role, result: str, detail: str, began: float, took: float, *, read_only: bool
) -> dict[str, object]:
    answer: dict[str, object] = {
        "role": role,
        "result": result,
        "detail": detail,
        "read_only": read_only,
        "t0": began,
        "latency_s": round(took, 4),
    }
    if result == "error":
        answer["error"] = detail
    return answer


def probe_live(
    app: str, bound_s: float, role: Role = APP_ROLE, step_timeout_s: float = 0.5
) -> dict[str, object]:
    """Retry a write in ``role`` until it is accepted or ``bound_s`` has passed."""
    began = time.monotonic()
    attempts = 0
    last: dict[str, object] = {}
    while True:
        attempts += 1
        last = probe_write(app, step_timeout_s, role)
        elapsed = time.monotonic() - began
        ok = last["result"] == "accepted"
        if ok or elapsed >= bound_s or last["result"] == "error":
            answer: dict[str, object] = {
                "role": role,
                "ok": ok,
                "after_s": round(elapsed, 4),
                "attempts": attempts,
                "t0": began,
                "last": last,
            }
            if last["result"] == "error":  # the harness failed: retrying proves nothing
                answer.update(result="error", error=last["error"])
            return answer
        time.sleep(0.1)


def read_state(app: str) -> dict[str, object]:
    """All log sequence numbers and the bank total of the store."""
    client = get_app(app).client(30.0)
    try:
        state = client.read_state()
    finally:
        client.close()
    return {
        "seqs": sorted(state.seqs),
        "bank_total": state.bank_total,
        "bank_rows": state.bank_rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_vmsnap.evidence.probe")
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--app", required=True)
    w.add_argument("--timeout", type=float, default=1.0)
    w.add_argument("--role", choices=ROLES, default=APP_ROLE)
    live = sub.add_parser("live")
    live.add_argument("--app", required=True)
    live.add_argument("--bound", type=float, default=10.0)
    live.add_argument("--role", choices=ROLES, default=APP_ROLE)
    s = sub.add_parser("state")
    s.add_argument("--app", required=True)
    args = parser.parse_args(argv)
    if args.cmd == "write":
        out = probe_write(args.app, args.timeout, args.role)
    elif args.cmd == "live":
        out = probe_live(args.app, args.bound, args.role)
    else:
        try:
            out = read_state(args.app)
        except Exception as err:
            out = {"error": " ".join(str(err).split())[:500]}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
