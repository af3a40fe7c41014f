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


_RUN_EPILOG = """\
exit codes:
  0  the verdict is application-consistent
  1  any other verdict (crash-consistent, inconsistent, unrecoverable, not-taken)
  2  usage error
"""


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .settings import APPS, QUIESCE_KINDS, SNAPSHOT_BACKENDS

    parser = subparsers.add_parser(
        "run",
        help="run one full cycle in a stand-in VM and judge the restored copy",
        description=(
            "Build a stand-in VM, install the config (as /etc/azure/"
            "VMSnapshotScriptPluginConfig.json) and the scripts (at the config's locations), "
            "run the application under a recorded write load, run the framework cycle as the "
            "extension does (real freeze, real snapshot), restore into a fresh VM and judge."
        ),
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, type=Path, metavar="PATH")
    parser.add_argument(
        "--pre",
        type=Path,
        metavar="PATH",
        help="local pre-script (default: the config's location on this machine)",
    )
    parser.add_argument(
        "--post",
        type=Path,
        metavar="PATH",
        help="local post-script (default: the config's location here)",
    )
    parser.add_argument("--app", required=True, choices=APPS)
    parser.add_argument("--vm", choices=("host", "container"), default="host")
    parser.add_argument("--disks", type=int, default=1, metavar="N")
    parser.add_argument("--fs", choices=("ext4", "xfs", "btrfs"), default="ext4")
    parser.add_argument("--snapshot", choices=SNAPSHOT_BACKENDS, default="reflink")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="extension")
    parser.add_argument(
        "--quiesce",
        choices=QUIESCE_KINDS,
        default="none",
        help="lock: the scripts claim writes are blocked while quiesced",
    )
    parser.add_argument(
        "--pacing",
        choices=("faithful", "prompt"),
        default="faithful",
        help="faithful: the extension's poll waits; prompt: notice exits at once",
    )
    parser.add_argument(
        "--skew",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds between the snapshots of consecutive disks",
    )
    parser.add_argument("--owner", metavar="USER", help="owner of the installed files")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="crash-consistent baseline: the same snapshot with no scripts and no freeze",
    )
    parser.add_argument("--workload-seconds", type=float, default=1.0, metavar="S")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the result as JSON")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write JSON and HTML here")
    parser.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from .cycle.run import run
    from .cycle.stage import read_locations
    from .report.text import summary_line, write_json
    from .settings import Settings

    if not args.config.is_file():
        return _usage_error(f"run: --config {args.config}: no such file")
    pre, post = args.pre, args.post
    host_pre, host_post = read_locations(args.config)
    # Without --pre/--post the config's locations are read as paths on this machine.
    if pre is None and host_pre and Path(host_pre).is_file():
        pre = Path(host_pre)
    if post is None and host_post and Path(host_post).is_file():
        post = Path(host_post)
    settings = Settings(
        config=args.config,
        pre=pre,
        post=post,
        app=args.app,
        vm=args.vm,
        disks=args.disks,
        fs=args.fs,
        snapshot=args.snapshot,
        profile=args.profile,
        quiesce=args.quiesce,
        pacing=args.pacing,
        skew_s=args.skew,
        owner=args.owner,
        workload_seconds=args.workload_seconds,
        report_dir=args.report,
        baseline=args.baseline,
    )
    problems = settings.problems()
    if problems:
        return _usage_error("run: " + "; ".join(problems))
    result = run(settings).to_dict()
    print(summary_line("cycle", result))
    for reason in result["reasons"]:
        print(f"  {reason}")
    if result["error"]:
        print(f"  harness: {result['error']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))
    if args.report:
        write_json(args.report, "cycle", result)
        from .report.html import write_html

        print(f"report: {write_html(args.report, {'cycle': result})}")
    return EXIT_OK if result["verdict"] == "application-consistent" else EXIT_FINDINGS


def _add_cleanup(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "cleanup",
        help="release loop devices, mounts and images left by crashed runs (found by tag)",
    )
    parser.add_argument("--home", type=Path, help="state directory (default $VMSNAP_HOME)")
    parser.add_argument(
        "--include-live",
        action="store_true",
        help="also release resources of runs whose owner is still alive",
    )
    parser.add_argument("--dry-run", action="store_true", help="only list what would go")
    parser.add_argument(
        "--tag",
        default="vmsnap-",
        metavar="TAG",
        help="only resources whose tag starts with TAG (default: all of ours)",
    )
    parser.set_defaults(func=_cmd_cleanup)


def _cmd_cleanup(args: argparse.Namespace) -> int:
    from .vm import cleanup

    found = cleanup.find_leftovers(args.home, tag_prefix=args.tag, include_live=args.include_live)
    items = [*found.mounts, *found.loops, *found.files]
    if not items:
        print("cleanup: nothing of ours is left")
        return EXIT_OK
    if args.dry_run:
        for item in items:
            print(f"would release {item}")
        return EXIT_OK
    report = cleanup.release(found)
    for action in report.actions:
        print(action)
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FINDINGS


# Subcommands, in help order.
_COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    _add_lint,
    _add_run,
    _add_cleanup,
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
        print("vmsnap: interrupted; what the run had made was released", file=sys.stderr)
        return 130
    except BaseException as exc:
        if type(exc).__name__ != "Terminated":
            raise
        print("vmsnap: terminated; what the run had made was released", file=sys.stderr)
        return 143


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
