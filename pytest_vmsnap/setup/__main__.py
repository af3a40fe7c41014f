"""``python3 -m pytest_vmsnap.setup --print-packages [--all | --group G ...]``: the Debian
packages, one per line (standard library only: runs before any virtual environment exists)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .packages import GROUPS, HARNESS_GROUPS, read_list, select


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m pytest_vmsnap.setup")
    parser.add_argument(
        "--print-packages", action="store_true", help="print the Debian packages, one per line"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every group")
    which.add_argument(
        "--group",
        action="append",
        choices=GROUPS,
        help=f"only these groups (default: {', '.join(HARNESS_GROUPS)})",
    )
    args = parser.parse_args(argv)
    if not args.print_packages:
        parser.print_usage(sys.stderr)
        return 2
    groups = GROUPS if args.all else (args.group or HARNESS_GROUPS)
    for name in select(read_list(), groups):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
