"""Heuristics about database quiescing in scripts: locks and backup modes that end with the
client session (also when the lock is in a file the script sources, runs or feeds to a client),
PostgreSQL's removed backup calls, an unawaited Redis BGSAVE, MySQL's super_read_only on
MariaDB, and scripts that freeze file systems themselves."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .included import Included
from .report import Collector
from .shell_text import ShellText, scan_shell
from .wording import line_numbers

# Something that can keep a client session (and its locks) alive after the script exits.
_HOLDS_SESSION = re.compile(
    r"(?<![&>|<0-9])&(?![&>])|\bmkfifo\b|\bcoproc\b|\bnohup\b|\bsetsid\b|\bsystemd-run\b",
)
_LOCK = (
    r"FLUSH\s+TABLES\s+WITH\s+READ\s+LOCK|\bLOCK\s+TABLES?\s+\w|\bBEGIN\s+(IMMEDIATE|EXCLUSIVE)\b"
)
# Setting or reading the variable; naming it in a SHOW VARIABLES LIKE pattern is harmless.
_SUPER_READ_ONLY = r"\bSET\b[^;\n]*\bsuper_read_only\b|@@(global\.)?super_read_only\b"
_MARIADB_CLIENT = re.compile(r"(?:^|[\s;&|(/])mariadb(?:-admin|-dump)?(?=[\s;&|)]|$)")


def _holds_session(shell: ShellText) -> bool:
    return bool(
        _HOLDS_SESSION.search(shell.code_text())
        or re.search(r"\bSLEEP\s*\(|\bpg_sleep\b", shell.logic_text(), re.IGNORECASE)
    )


def warn_database_heuristics(
    out: Collector,
    location: str,
    shell: ShellText,
    is_pre: bool,
    included: Sequence[Included] = (),
) -> None:
    """Warn about quiescing that fails or ends before the snapshot.

    The checks for locks and backup modes held across the snapshot apply only when ``is_pre``;
    ``included`` are the files the script sources, runs or feeds to a client (their locks
    count as the script's).
    """
    logic = shell.logic_text()
    held = _holds_session(shell)
    removed = shell.logic_matches(r"\bpg_(start|stop)_backup\s*\(")
    if removed:
        out.warn(
            "pg-start-backup-removed",
            f"{location} calls pg_start_backup()/pg_stop_backup() ({line_numbers(removed)}): "
            "PostgreSQL 15 removed them (exclusive backup mode is gone), so the call fails.",
            "PostgreSQL recovers correctly from a snapshot taken of all its disks at once, "
            "without any backup call; a CHECKPOINT in the pre-script shortens that recovery. "
            "If you need a labelled backup, pg_backup_start()/pg_backup_stop() must run in one "
            "session that stays open from pre to post.",
            path=location,
            line=removed[0],
        )
    if not is_pre:
        return
    _warn_lock_released(out, location, shell, held, included)
    starts = shell.logic_matches(r"\bpg_backup_start\s*\(")
    if starts and not held:
        out.warn(
            "pg-backup-start-session",
            f"{location} calls pg_backup_start() ({line_numbers(starts)}) from a psql that exits: "
            "the backup belongs to that session and PostgreSQL aborts it when the session "
            "ends, so nothing is in backup mode during the snapshot and the post-script's "
            "pg_backup_stop() (another session) fails. (Heuristic.)",
            "For a snapshot of all PostgreSQL's disks at once no backup call is needed (crash "
            "recovery is correct; CHECKPOINT first to shorten it). Otherwise keep one psql "
            "session open in the background from pre to post, fed through a FIFO.",
            path=location,
            line=starts[0],
        )
    bgsave = shell.logic_matches(r"\bBGSAVE\b")
    waits = re.search(
        r"\bLASTSAVE\b|rdb_bgsave_in_progress|\bINFO\s+persistence\b", logic, re.IGNORECASE
    )
    if bgsave and not waits:
        out.warn(
            "redis-bgsave-no-wait",
            f"{location} runs BGSAVE ({line_numbers(bgsave)}) and does not wait for it: BGSAVE "
            "returns at once and a forked child writes the dump later, so the snapshot can "
            "hold the previous dump.rdb and a half-written temporary file. (Heuristic.)",
            "Wait for the save: poll 'redis-cli INFO persistence' until rdb_bgsave_in_progress "
            "is 0 and rdb_last_bgsave_status is ok (or compare LASTSAVE before and after), "
            "and fail the script if it does not finish in time.",
            path=location,
            line=bgsave[0],
        )
    freezes = shell.code_matches(re.compile(r"\b(fsfreeze|xfs_freeze)\s+(-f|--freeze)\b"))
    if freezes:
        out.warn(
            "script-freezes-fs",
            f"{location} freezes a file system itself ({line_numbers(freezes)}). The extension "
            "freezes every file system right after the pre-script: one already frozen makes "
            "its freeze fail, and anything that writes there (the extension's own log "
            "included) blocks until someone thaws it.",
            "Leave freezing to the extension (fsFreezeEnabled: true); quiesce the "
            "application in the pre-script instead.",
            path=location,
            line=freezes[0],
        )


def _warn_lock_released(
    out: Collector, location: str, shell: ShellText, held: bool, included: Sequence[Included]
) -> None:
    """A lock in a client that exits, in the script or in a file it brings in."""
    places: list[tuple[str, int, str]] = []  # (path, line, how the message names it)
    locks = shell.logic_matches(_LOCK)
    if locks:
        places.append((location, locks[0], line_numbers(locks)))
    for item in included:
        text = scan_shell(item.text)
        held = held or _holds_session(text)
        lines = [n for n in text.logic_matches(_LOCK) if not _sql_comment(item, text, n)]
        if lines:
            places.append(
                (item.path, lines[0], f"{line_numbers(lines)} of {item.path}, {item.via}")
            )
    if not places or held:
        return
    out.warn(
        "lock-released-on-exit",
        f"{location} takes a lock ({'; '.join(p[2] for p in places)}) in a database client that "
        "exits when its command is done, and nothing keeps that session open. Such locks "
        "belong to the session: the lock is gone when the client exits, before the snapshot. "
        "(Heuristic.)",
        "Hold the lock in a background session that outlives the pre-script (for MariaDB/"
        "MySQL: a client that runs FLUSH TABLES WITH READ LOCK then SELECT SLEEP(<max>), "
        "fed through a FIFO or started with &), return only once the lock is held, and "
        "release it in the post-script.",
        path=places[0][0],
        line=places[0][1],
    )


def _sql_comment(item: Included, text: ShellText, line: int) -> bool:
    return item.sql and text.logic[line - 1].lstrip().startswith("--")


def warn_super_read_only(
    out: Collector, location: str, shell: ShellText, mariadb_server: str | None
) -> None:
    """Warn about MySQL's ``super_read_only``, which MariaDB does not have.

    ``mariadb_server`` says why this machine runs MariaDB (e.g. '/usr/sbin/mariadbd is
    installed'), or is None when lint cannot tell.
    """
    lines = shell.logic_matches(_SUPER_READ_ONLY)
    if not lines:
        return
    if mariadb_server is None and _MARIADB_CLIENT.search(shell.code_text()):
        mariadb_server = f"{location} runs the mariadb client"
    fails = (
        f"This machine runs MariaDB ({mariadb_server}), so the statement fails"
        if mariadb_server
        else "It fails on MariaDB"
    )
    out.warn(
        "super-read-only",
        f"{location} uses super_read_only ({line_numbers(lines)}), a MySQL variable (5.7.8 and "
        f"later) that MariaDB does not have. {fails} with ERROR 1193 (HY000): Unknown system "
        "variable 'super_read_only', and the client stops there: the statements after it in "
        "the same call do not run.",
        "On MariaDB use SET GLOBAL read_only = ON (accounts with the READ ONLY ADMIN "
        "privilege, or SUPER before 10.11, can still write; from MariaDB 12.0 read_only = "
        "NO_LOCK_NO_ADMIN stops them too). Keep super_read_only only for MySQL servers.",
        path=location,
        line=lines[0],
    )
