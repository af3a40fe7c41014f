"""Probes run inside the stand-in VM, each on a fresh connection as the application user.

The harness calls them through the VM's fork server
(``vm.call("pytest_vmsnap.evidence.probe:...")``); each is also a command, printing one JSON
object: ``python -m pytest_vmsnap.evidence.probe write --app APP --timeout S``: the
quiesce-effectiveness probe
(one write, watched: accepted, blocked or refused; see :mod:`pytest_vmsnap.apps.probewrite`).
``python -m pytest_vmsnap.evidence.probe live --app APP --bound S``: the liveness probe (writes
must succeed again within the bound).
``python -m pytest_vmsnap.evidence.probe state --app APP``: what the oracle reads from a
restored store.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

from ..apps import get_app
from ..apps.probewrite import no_connection


def probe_write(app: str, timeout_s: float) -> dict[str, object]:
    """One write attempt on a fresh connection."""
    began = time.monotonic()
    try:
        client = get_app(app).client(timeout_s)
    except Exception as err:
        took = time.monotonic() - began
        result, detail = no_connection(err, took, timeout_s)
        return {"result": result, "detail": detail, "t0": began, "latency_s": round(took, 4)}
    try:
        result, detail = client.probe_write(timeout_s)
    except Exception as err:
        result, detail = "refused", " ".join(str(err).split())[:300]
    finally:
        with contextlib.suppress(Exception):
            client.close()
    return {
        "result": result,
        "detail": detail,
        "t0": began,
        "latency_s": round(time.monotonic() - began, 4),
    }


def probe_live(app: str, bound_s: float, step_timeout_s: float = 0.5) -> dict[str, object]:
    """Retry a write until it is accepted or ``bound_s`` has passed."""
    began = time.monotonic()
    attempts = 0
    last: dict[str, object] = {}
    while True:
        attempts += 1
        last = probe_write(app, step_timeout_s)
        elapsed = time.monotonic() - began
        if last["result"] == "accepted":
            return {
                "ok": True,
                "after_s": round(elapsed, 4),
                "attempts": attempts,
                "t0": began,
                "last": last,
            }
        if elapsed >= bound_s:
            return {
                "ok": False,
                "after_s": round(elapsed, 4),
                "attempts": attempts,
                "t0": began,
                "last": last,
            }
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
    live = sub.add_parser("live")
    live.add_argument("--app", required=True)
    live.add_argument("--bound", type=float, default=10.0)
    s = sub.add_parser("state")
    s.add_argument("--app", required=True)
    args = parser.parse_args(argv)
    if args.cmd == "write":
        out = probe_write(args.app, args.timeout)
    elif args.cmd == "live":
        out = probe_live(args.app, args.bound)
    else:
        try:
            out = read_state(args.app)
        except Exception as err:
            out = {"error": " ".join(str(err).split())[:500]}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
