"""The ``vmsnap`` command line.

Each subcommand registers itself through a small ``_add_<name>(subparsers)`` function listed
in :data:`_COMMANDS`; the function attaches a handler (``func``) that returns the exit code.
Bad input never produces a traceback: it is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import version
from .framework.azure.profiles import PROFILES
from .lint import LintReport, lint
from .settings import BY_NAME, FIELDS, Field, Framework, Settings, SettingsError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

_LINT_EPILOG = """\
exit codes:
  0  no findings: the pre-check passes and there is no warning
  1  at least one finding (an error from the pre-check, or a warning)
  2  usage error (bad option, --root not a directory, unreadable files)

--config (with --pre, --post, --modes, --owner) lints your own files as `vmsnap run`
installs them: in a scratch root, the config at /etc/azure, the scripts at the config's
locations (without --pre/--post: the files the config names on this machine), with the
modes --modes declares, owned by root. The findings name your files.

--framework gcp|vmware|qemu-ga|aws-dlm lints for that framework's rules instead: your files
(--config, --pre, --post, --hook, --document) installed where it looks for them, or a
machine root (--root) as it is.
"""
_LINT_FILES = ("config", "pre", "post", "hook", "document", "modes", "owner")
"""``vmsnap lint`` flags that install the user's files as ``vmsnap run`` does."""


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
    parser.add_argument(
        "--framework",
        choices=Framework.values(),
        default="azure",
        help="whose rules: azure (default), gcp, vmware, qemu-ga, aws-dlm",
    )
    files = parser.add_argument_group(
        "your files, installed as vmsnap run installs them (instead of --root)"
    )
    for name in _LINT_FILES:
        f = BY_NAME[name]
        files.add_argument(f.flag, dest=f.name, metavar=f.metavar, help=f.help)
    parser.set_defaults(func=_cmd_lint)


def _cmd_lint(args: argparse.Namespace) -> int:
    given = {name: getattr(args, name) for name in _LINT_FILES if getattr(args, name)}
    if given:
        return _lint_files(args, given)
    root = Path(args.root or "/")
    if not root.is_dir():
        return _usage_error(f"lint: --root {args.root}: not a directory")
    try:
        if args.framework != "azure":
            from .lint.frameworks import lint_framework

            return _print_lint(args, lint_framework(root, args.framework))
        report = lint(root, profile=args.profile)
    except (OSError, ValueError) as err:
        return _usage_error(f"lint: {_describe(err)}")
    return _print_lint(args, report)


def _lint_files(args: argparse.Namespace, given: dict[str, Any]) -> int:
    """``vmsnap lint --config ...``: the user's files staged as ``vmsnap run`` stages them."""
    from .cycle.lint_files import lint_files

    if args.root is not None:
        return _usage_error("lint: give --root DIR or --config FILE (with --pre/--post), not both")
    if args.framework != "azure":
        return _lint_hosted(args, given)
    if "config" not in given:
        flags = ", ".join(BY_NAME[name].flag for name in given)
        return _usage_error(f"lint: {flags}: only with --config FILE")
    try:
        s = Settings.from_mapping(given, base_dir=Path.cwd(), where="lint")
    except SettingsError as err:
        return _usage_error(str(err))
    assert s.config is not None
    try:
        pre, post = _local_scripts(s.config, s.pre, s.post)
        report = lint_files(s.config, pre, post, profile=args.profile, owner=s.owner, modes=s.modes)
    except (OSError, ValueError) as err:  # StageError (a file missing...): one line
        return _usage_error(f"lint: {_describe(err)}")
    return _print_lint(args, report)


def _lint_hosted(args: argparse.Namespace, given: dict[str, Any]) -> int:
    """``vmsnap lint --framework F`` with the user's files, installed where F looks."""
    from .cycle.lint_files import lint_hosted

    try:
        s = Settings.from_mapping(
            {**given, "framework": args.framework}, base_dir=Path.cwd(), where="lint"
        )
    except SettingsError as err:
        return _usage_error(str(err))
    files = s.files()
    if not files:
        return _usage_error("lint: give the files to lint (--pre/--post, --hook, --config)")
    try:
        report = lint_hosted(args.framework, files, owner=s.owner, modes=s.modes)
    except (OSError, ValueError) as err:  # StageError, a framework that cannot host them
        return _usage_error(f"lint: {_describe(err)}")
    return _print_lint(args, report)


def _local_scripts(
    config: Path, pre: Path | None, post: Path | None
) -> tuple[Path | None, Path | None]:
    """``pre``/``post``, or else the config's locations read as paths on this machine, when
    files are there (what ``vmsnap run`` and ``vmsnap lint --config`` install)."""
    from .cycle.stage import read_locations

    host_pre, host_post = read_locations(config)
    if pre is None and host_pre and Path(host_pre).is_file():
        pre = Path(host_pre)
    if post is None and host_post and Path(host_post).is_file():
        post = Path(host_post)
    return pre, post


def _print_lint(args: argparse.Namespace, report: LintReport) -> int:
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_text())
    return EXIT_OK if report.ok else EXIT_FINDINGS


_RUN_EPILOG = """\
exit codes:
  0  the verdict is application-consistent
  1  any other verdict (crash-consistent, inconsistent, unrecoverable, not-taken, error)
  2  usage error
"""


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one full cycle in a stand-in VM and judge the restored copy",
        description=(
            "Build a stand-in VM, install the config and the scripts where the framework "
            "looks for them (Azure: /etc/azure/VMSnapshotScriptPluginConfig.json and the "
            "config's locations), run the application under a recorded write load, run the "
            "framework's cycle as its agent does (real freeze where it freezes, real "
            "snapshot), restore into a fresh VM and judge."
        ),
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for f in FIELDS:
        if f.cli:
            _add_field(parser, f)
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the result as JSON")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="say what the harness does as it goes"
    )
    parser.set_defaults(func=_cmd_run)


def _add_field(parser: argparse.ArgumentParser, f: Field) -> None:
    """One ``vmsnap run`` flag for a setting of :data:`~pytest_vmsnap.settings.FIELDS`."""
    if isinstance(f.default, bool):
        parser.add_argument(f.flag, dest=f.name, action="store_true", help=f.help)
        return
    choices = f.cli_choices or (f.choices.values() if f.choices else None)
    default = None if f.required else f.default
    converted: dict[str, Any] = {"type": f.parse} if f.parse in (Path, int, float) else {}
    parser.add_argument(
        f.flag,
        dest=f.name,
        required=f.required,
        **converted,
        choices=choices,
        default=default,
        metavar=f.metavar,
        help=f.help + (f" (default: {default})" if default not in (None, "", ()) else ""),
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from .cycle.run import run
    from .report.text import summary_line, write_json

    values = {f.name: getattr(args, f.name) for f in FIELDS if f.cli}
    if args.framework == "azure":
        if args.config is None:
            return _usage_error("run: --config is needed with --framework azure")
        if not args.config.is_file():
            return _usage_error(f"run: --config {args.config}: no such file")
        # Without --pre/--post the config's locations are read as paths on this machine.
        values["pre"], values["post"] = _local_scripts(args.config, args.pre, args.post)
    try:
        settings = Settings.from_mapping(values, base_dir=Path.cwd(), where="run")
    except SettingsError as err:
        return _usage_error(str(err))
    problems = settings.problems()
    problems += _output_problems(args.json, "--json", want_dir=False)
    problems += _output_problems(settings.report_dir, "--report", want_dir=True)
    if settings.vm == "container" and os.geteuid() != 0:
        problems.append("--vm container needs root (loop devices for the VM's disks)")
    if problems:
        return _usage_error("run: " + "; ".join(problems))
    result = run(settings).to_dict()
    print(summary_line("cycle", result))
    for reason in result["reasons"]:
        print(f"  {reason}")
    for finding in result["findings"]:
        if finding["name"] == "FileModeRefused":  # the user's own files, and the fix
            print(f"  {finding['message']}\n    -> {finding['action']}")
    if result["error"]:
        print(f"  harness: {result['error']}")
    try:
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2, default=str))
        if settings.report_dir:
            write_json(settings.report_dir, "cycle", result)
            from .report.html import write_html

            print(f"report: {write_html(settings.report_dir, {'cycle': result})}")
    except OSError as err:
        # The cycle ran: its result is never lost, whatever happened to the output path.
        kept = write_json(Path(tempfile.mkdtemp(prefix="vmsnap-result-")), "cycle", result)
        print(
            f"vmsnap: cannot write the result ({_describe(err)}); kept in {kept}", file=sys.stderr
        )
    return EXIT_OK if result["verdict"] == "application-consistent" else EXIT_FINDINGS


def _output_problems(path: Path | None, flag: str, *, want_dir: bool) -> list[str]:
    """Why ``path`` cannot take the run's output, checked before the cycle runs (empty when
    it can): the wrong kind of file there, or a directory this user cannot write."""
    if path is None:
        return []
    if path.exists() and path.is_dir() != want_dir:
        kind = "a directory" if path.is_dir() else "a file"
        return [f"{flag} {path} is {kind}; give {'a directory' if want_dir else 'a file name'}"]
    holder = path if path.is_dir() else path.parent
    while not holder.exists() and holder != holder.parent:
        holder = holder.parent  # the output makes the missing directories
    if not holder.is_dir():
        return [f"{flag} {path}: {holder} is not a directory"]
    if not os.access(holder, os.W_OK | os.X_OK):
        return [f"{flag} {path}: {holder} is not writable by this user"]
    return []


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


_COMPARE_FIELDS = ("pre", "post", "hook", "app", "vm", "pacing", "writers", "quiesce", "modes")
"""The settings ``vmsnap compare`` takes; each framework gets its own config (the smallest
that runs the scripts), so there is no --config."""


def _add_compare(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="run the same scripts under every framework that can host them, one table",
        description=(
            "Run one full cycle per framework (azure, gcp, vmware, qemu-ga, aws-dlm) with the "
            "same scripts, installed where each looks for them, each with the smallest config "
            "that runs them, and print one table: how each framework called them, what it "
            "said, and the verdict on the restored copy. A pre/post pair (--pre, --post) or "
            "one hook called with freeze and thaw (--hook)."
        ),
        epilog="exit codes:\n  0  application-consistent under every framework that hosts "
        "them\n  1  any other verdict under one of them\n  2  usage error\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name in _COMPARE_FIELDS:
        _add_field(parser, BY_NAME[name])
    parser.add_argument(
        "--frameworks",
        default=",".join(Framework.values()),
        help="which frameworks, comma-separated (default: all, in this order)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the rows as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="say what happens")
    parser.set_defaults(func=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> int:
    from .cycle.compare import compare
    from .report.text import compare_table

    chosen = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in Framework.values()]
    if unknown or not chosen:
        return _usage_error(
            f"compare: --frameworks {args.frameworks}: choose from {', '.join(Framework.values())}"
        )
    if (args.hook is None) == (args.pre is None and args.post is None):
        return _usage_error("compare: give --pre and --post, or --hook")
    if args.hook is None and (args.pre is None or args.post is None):
        return _usage_error("compare: --pre and --post go together")
    values = {name: getattr(args, name) for name in _COMPARE_FIELDS}
    try:
        settings = Settings.from_mapping(values, base_dir=Path.cwd(), where="compare")
    except SettingsError as err:
        return _usage_error(str(err))
    problems = [p for p in settings.problems() if not p.startswith("no config given")]
    problems += _output_problems(args.json, "--json", want_dir=False)
    if problems:
        return _usage_error("compare: " + "; ".join(problems))
    rows = [row.to_dict() for row in compare(settings, chosen)]
    print(compare_table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2, default=str))
    hosted = [r for r in rows if not r["refused"]]
    good = hosted and all(r["verdict"] == "application-consistent" for r in hosted)
    return EXIT_OK if good else EXIT_FINDINGS


def _add_example(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from . import data

    parser = subparsers.add_parser(
        "example",
        help="write a ready application repository from the bundled sample scripts",
        description=(
            "Write DIR/backup/ (the example's VMSnapshotScriptPluginConfig.json, mode 600, and "
            "the application's correct pre.sh and post.sh, mode 700) and DIR/pyproject.toml "
            "(the vmsnap_* ini keys): then `pytest --vmsnap` in DIR proves them. Without DIR, "
            "print where the bundled examples and sample scripts (correct and broken, each bug "
            "explained in its README.md) are."
        ),
    )
    parser.add_argument("dir", nargs="?", type=Path, metavar="DIR", help="where to write")
    parser.add_argument(
        "--app", choices=data.apps(), default="sqlite", help="the application (default: sqlite)"
    )
    parser.add_argument(
        "--framework",
        choices=Framework.values(),
        default="azure",
        help="whose scripts: azure (default), gcp, vmware, qemu-ga, aws-dlm",
    )
    parser.set_defaults(func=_cmd_example)


def _cmd_example(args: argparse.Namespace) -> int:
    from . import data

    if args.dir is None:
        print(f"examples:       {data.example(args.app).parent}")
        print(f"sample scripts: {data.sample_scripts()}")
        return EXIT_OK
    try:
        if args.framework == "azure":
            written = data.write_example(args.app, args.dir)
        else:
            written = data.write_framework_example(args.app, args.framework, args.dir)
    except KeyError:
        return _usage_error(f"example: no {args.framework} sample for {args.app} yet")
    except OSError as err:
        return _usage_error(_describe(err))
    for path in written.values():
        print(path)
    print(f"next: cd {args.dir} && pytest --vmsnap  (as root)")
    return EXIT_OK


_DOCTOR_EPILOG = """\
exit codes:
  0  every required check passed (optional ones may warn)
  1  a required check failed: its line says what fixes it
"""


def _add_doctor(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .settings import APPS, BY_NAME

    parser = subparsers.add_parser(
        "doctor",
        help="check that this machine can run the harness, each failure with its fix",
        description=(
            "Check root, the stand-in VM's tools, the kernel's file systems and namespaces, "
            "a reflink pool, a loop device and a real freeze on a scratch file system (all "
            "released again), each application's server, clients and Python client library, "
            "and for the container stand-in Docker and its images (never built here). One "
            "line per check: ok, FAIL, warn (not needed for these options) or skip."
        ),
        epilog=_DOCTOR_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--app",
        action="append",
        choices=APPS,
        dest="apps",
        help="only this application (repeat for more; default: all)",
    )
    for name in ("vm", "fs", "snapshot", "pg_version", "pg_bin"):
        _add_field(parser, BY_NAME[name])
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each check as it ends")
    parser.set_defaults(func=_cmd_doctor)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .settings import APPS
    from .setup.doctor import Options, run_checks

    options = Options(
        apps=tuple(args.apps or APPS),
        vm=args.vm,
        fs=args.fs,
        snapshot=args.snapshot,
        pg_version=args.pg_version,
        pg_bin=args.pg_bin,
    )
    report = run_checks(options)
    print(report.to_json() if args.json else report.format_text())
    return EXIT_OK if report.ok else EXIT_FINDINGS


def _add_setup(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .setup.packages import GROUPS, HARNESS_GROUPS

    parser = subparsers.add_parser(
        "setup",
        help="install the Debian packages the harness needs (apt-get, as root)",
        description=(
            "Install the Debian packages of pytest_vmsnap/setup/debian-packages.txt that dpkg "
            "does not list as installed: apt-get update, then apt-get install -y "
            "--no-install-recommends with DEBIAN_FRONTEND=noninteractive, from the sources apt "
            "is configured with; services are not started on install. Groups: "
            f"{', '.join(GROUPS)} (default: {', '.join(HARNESS_GROUPS)})."
        ),
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every group (what `make` installs)")
    which.add_argument(
        "--group", action="append", choices=GROUPS, help="only this group (repeat for more)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="change nothing: say what is missing and let apt simulate the installation",
    )
    parser.add_argument(
        "--print-packages", action="store_true", help="only print the packages, one per line"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="say what it runs")
    parser.set_defaults(func=_cmd_setup)


def _cmd_setup(args: argparse.Namespace) -> int:
    from .setup.packages import GROUPS, HARNESS_GROUPS, read_list, select, setup

    names = select(read_list(), GROUPS if args.all else (args.group or HARNESS_GROUPS))
    if args.print_packages:
        print("\n".join(names))
        return EXIT_OK
    result = setup(names, dry_run=args.dry_run)
    for line in result.lines():
        print(line, file=sys.stdout if result.ok else sys.stderr)
    return EXIT_OK if result.ok else EXIT_FINDINGS


# Subcommands, in help order.
_COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    _add_lint,
    _add_run,
    _add_compare,
    _add_cleanup,
    _add_example,
    _add_doctor,
    _add_setup,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``vmsnap`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="vmsnap",
        description="Prove VM-backup quiesce (pre/post) scripts correct under Azure, GCP, "
        "VMware Tools, qemu-guest-agent and AWS DLM.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
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
    _log_to_stderr(verbose=bool(getattr(args, "verbose", False)))
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


def _log_to_stderr(*, verbose: bool) -> None:
    """The harness's own log records, one line each on stderr: warnings always, what it does
    with ``-v`` (other libraries' records are left to their defaults)."""
    logger = logging.getLogger("pytest_vmsnap")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("vmsnap: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


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
