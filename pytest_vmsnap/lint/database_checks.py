"""Heuristics about database quiescing in scripts: locks and backup modes that end with the
client session, PostgreSQL's removed backup calls, an unawaited Redis BGSAVE, and scripts that
freeze file systems themselves."""

from __future__ import annotations

import re

from .report import Collector
from .shell_text import ShellText
from .wording import line_numbers

# Something that can keep a client session (and its locks) alive after the script exits.
_HOLDS_SESSION = re.compile(
    r"(?<![&>|<0-9])&(?![&>])|\bmkfifo\b|\bcoproc\b|\bnohup\b|\bsetsid\b|\bsystemd-run\b",
)


def warn_database_heuristics(out: Collector, location: str, shell: ShellText, is_pre: bool) -> None:
    """Warn about quiescing that fails or ends before the snapshot.

    The checks for locks and backup modes held across the snapshot apply only when ``is_pre``.
    """
    logic = shell.logic_text()
    held = _HOLDS_SESSION.search(shell.code_text()) or re.search(
        r"\bSLEEP\s*\(|\bpg_sleep\b", logic, re.IGNORECASE
    )
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
    locks = shell.logic_matches(
        r"FLUSH\s+TABLES\s+WITH\s+READ\s+LOCK|\bLOCK\s+TABLES?\s+\w|"
        r"\bBEGIN\s+(IMMEDIATE|EXCLUSIVE)\b",
    )
    if locks and not held:
        out.warn(
            "lock-released-on-exit",
            f"{location} takes a lock ({line_numbers(locks)}) in a database client that exits when "
            "its command is done, and nothing keeps that session open. Such locks belong to "
            "the session: the lock is gone when the client exits, before the snapshot. "
            "(Heuristic.)",
            "Hold the lock in a background session that outlives the pre-script (for MariaDB/"
            "MySQL: a client that runs FLUSH TABLES WITH READ LOCK then SELECT SLEEP(<max>), "
            "fed through a FIFO or started with &), return only once the lock is held, and "
            "release it in the post-script.",
            path=location,
            line=locks[0],
        )
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
