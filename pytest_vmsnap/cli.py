"""The ``vmsnap`` command line.

Each subcommand registers itself through a small ``_add_<name>(subparsers)`` function listed
in :data:`_COMMANDS`; the function attaches a handler (``func``) that returns the exit code.
Bad input never produces a traceback: it is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .framework.profiles import PROFILES
from .lint import lint

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

_LINT_EPILOG = """\
exit codes:
  0  no findings: the pre-check passes and there is no warning
  1  at least one finding (an error from the pre-check, or a warning)
  2  usage error (bad option, --root not a directory, unreadable files)
"""


def _add_lint(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "lint",
        help="check the pre/post-script config and scripts without running them",
        description=(
            "Run the Azure extension's own pre-check on a machine root (config, permissions, "
            "both scripts) and warn about what the pre-check lets through but still breaks "
            "backups: bash syntax under sh, ignored shebangs and retries, rounded or capped "
            "timeouts, params split into characters, replaceable paths, locks released "
            "before the snapshot, and where the extension and the docs disagree."
        ),
        epilog=_LINT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--root",
        default="/",
        metavar="DIR",
        help="the machine's / (default: /, this machine); /etc/azure is read below it",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="extension",
        help="whose rules decide the errors: the extension's code (default) or the docs",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=_cmd_lint)


def _cmd_lint(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        return _usage_error(f"lint: --root {args.root}: not a directory")
    try:
        report = lint(root, profile=args.profile)
    except (OSError, ValueError) as err:
        return _usage_error(f"lint: {_describe(err)}")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_text())
    return EXIT_OK if report.ok else EXIT_FINDINGS


# Subcommands, in help order. `run` and `cleanup` join here when they are implemented.
_COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    _add_lint,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``vmsnap`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="vmsnap",
        description="Prove Azure Linux VM-backup pre/post (quiesce) scripts correct.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vmsnap`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on a usage error and 0 after --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler = getattr(args, "func", None)
    if handler is None:
        parser.print_usage(sys.stderr)
        return _usage_error("choose a command (vmsnap --help lists them)")
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("vmsnap: interrupted", file=sys.stderr)
        return 130


def _usage_error(message: str) -> int:
    print(f"vmsnap: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _describe(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror}"
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
