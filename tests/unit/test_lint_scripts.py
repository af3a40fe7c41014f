"""The script readers behind ``vmsnap lint``: the shell views, the command structure, files a
script brings in, and :func:`waits_on_post` (pure: two script texts in, one sentence out)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_vmsnap.lint.included import included_files, read_in_root
from pytest_vmsnap.lint.pre_waits import find_wait, waits_on_post
from pytest_vmsnap.lint.shell_commands import expand, parse, variables
from pytest_vmsnap.lint.shell_text import BLANK, scan_shell

HOLD = 'mysql -e "FLUSH TABLES WITH READ LOCK; SELECT SLEEP(86400)"'

# ---------------------------------------------------------------------------------------------
# Views


def test_code_view_keeps_columns_and_blanks_quoted_data() -> None:
    text = (
        'mysql -e"FLUSH TABLES; source /x.sql" # note\n'
        "echo \"${x//a/b} [[ $(date +%s) $EUID\" 'a b'\n"
        'sh -c "cd /; source x"\n'
    )
    shell = scan_shell(text)
    assert [len(c) for c in shell.code] == [len(line) for line in text.split("\n")]
    first, second, third = shell.code[:3]
    assert "source" not in first and first.startswith('mysql -e"' + BLANK)
    assert first.endswith('"       ')  # the comment became spaces
    assert "${x//a/b}" in second and "$(date +%s)" in second and "$EUID" in second
    assert "[[" not in second and "'" + BLANK * 3 + "'" in second
    assert third == 'sh -c "cd /; source x"'  # sh runs it as shell again


def test_heredoc_lines_know_their_command() -> None:
    shell = scan_shell("cat <<A; mysql <<-B\none\nA\n\ttwo\n\tB\necho\n")
    assert shell.heredoc_owner == [0, 1, 1, 1, 1, 0, 0]
    assert shell.heredoc_body(1) == ["one", "A", "\ttwo", "\tB"]
    assert shell.code[1] == "   "


# ---------------------------------------------------------------------------------------------
# Commands


def test_background_reaches_groups_loops_functions_and_lists() -> None:
    script = parse(
        scan_shell(
            "hold() {\n  mysql -e 'x'\n}\nhold &\n"
            "( a; while true; do b; done ) > /dev/null 2>&1 &\n"
            "c && d &\ne | f\nwait\n"
        )
    )
    background = {c.name for c in script.commands if c.background}
    assert {"mysql", "hold", "a", "true", "b", "c", "d"} <= background
    assert {"e", "f", "wait"}.isdisjoint(background)
    assert script.functions["hold"] and script.commands[script.functions["hold"][0]].name == "mysql"


def test_loops_case_patterns_and_redirections_after_done() -> None:
    script = parse(
        scan_shell(
            'case "$1" in\n  pre|(x)) echo pre ;;\n  post) echo post ;;\nesac\n'
            'until ! kill -0 "$pid"; do sleep 1; done < /run/q\n'
        )
    )
    (loop,) = script.loops
    assert loop.until and loop.negated and loop.condition is not None
    assert loop.condition.words == ["kill", "-0", '"$pid"']
    done = next(c for c in script.commands if c.name == "done")
    assert done.words == ["done", "<", "/run/q"] and not done.background
    assert [c.name for c in script.commands][:2] == ["echo", "echo"]


def test_variables_for_loops_and_the_script_directory() -> None:
    script = parse(
        scan_shell(
            'DIR="$(cd "$(dirname "$0")" && pwd)"\nexport LIB=$DIR/lib\n'
            'for f in /a/env.sh "$LIB/funcs.sh"; do . "$f"; done\n'
        )
    )
    values = variables(script)
    assert expand('"$f"', values, "/etc/azure") == ["/a/env.sh", "/etc/azure/lib/funcs.sh"]
    assert expand("${UNKNOWN}/x", values, "/etc/azure") == []


# ---------------------------------------------------------------------------------------------
# Files a script brings in


def _tree(root: Path) -> None:
    (root / "opt/db").mkdir(parents=True)
    (root / "opt/db/main.sh").write_text(
        "#!/bin/sh\nfor lib in /opt/db/env.sh /opt/db/lib.sh; do\n  . ${lib}\ndone\n"
    )
    (root / "opt/db/env.sh").write_text("X=1\n")
    (root / "opt/db/lib.sh").write_text("mysql < /opt/db/lock.sql\n")
    (root / "opt/db/lock.sql").write_text("FLUSH TABLES WITH READ LOCK;\n")
    (root / "opt/db/prog").write_bytes(b"\x7fELF\0\0\0")


def test_included_files_follow_runs_sources_and_sql(tmp_path: Path) -> None:
    _tree(tmp_path)
    pre = "#!/bin/sh\nsh /opt/db/main.sh\n/opt/db/prog --x\n/opt/db/prog\n"
    found = {i.path: i for i in included_files(tmp_path, "/etc/azure/pre.sh", scan_shell(pre))}
    assert set(found) == {"/opt/db/main.sh", "/opt/db/env.sh", "/opt/db/lib.sh", "/opt/db/lock.sql"}
    assert found["/opt/db/main.sh"].via == "run on line 2"
    assert found["/opt/db/lock.sql"].sql
    assert found["/opt/db/lock.sql"].via == (
        "fed to mysql on line 1 of /opt/db/lib.sh, sourced on line 3 of /opt/db/main.sh, "
        "run on line 2"
    )


def test_reads_stay_under_the_root(tmp_path: Path) -> None:
    root = tmp_path / "vm"
    (root / "opt").mkdir(parents=True)
    (tmp_path / "secret.sh").write_text("FLUSH TABLES WITH READ LOCK\n")
    (root / "opt/abs.sh").symlink_to(tmp_path / "secret.sh")
    (root / "opt/rel.sh").symlink_to("../../../secret.sh")
    os.mkfifo(root / "opt/fifo")
    (root / "opt/ok.sh").write_text("echo ok\n")
    assert read_in_root(root, "/opt/abs.sh") is None
    assert read_in_root(root, "/opt/rel.sh") is None
    assert read_in_root(root, "/../secret.sh") is None
    assert read_in_root(root, "/opt/fifo") is None  # not opened for reading: no hang
    assert read_in_root(root, "/opt/ok.sh") == "echo ok\n"
    (root / "opt/inside.sh").symlink_to("/opt/ok.sh")  # absolute: starts again at the root
    assert read_in_root(root, "/opt/inside.sh") == "echo ok\n"


# ---------------------------------------------------------------------------------------------
# waits_on_post


WAITS = [
    pytest.param(
        f"#!/bin/sh\n{HOLD} &\necho $! > /run/h.pid\nwait\n",
        '#!/bin/sh\nkill "$(cat /run/h.pid)"\n',
        "waits ('wait' on line 4) for the mysql session it started in the background on line 2, "
        "which keeps its lock until the post-script ends it (post-script line 2).",
        id="bare-wait",
    ),
    pytest.param(
        f"#!/bin/sh\n{HOLD} &\nwait $!\n",
        "#!/bin/sh\n",
        "('wait $!' on line 3) for the mysql session",
        id="wait-last-job",
    ),
    pytest.param(
        '#!/bin/sh\n( echo "FLUSH TABLES WITH READ LOCK; SELECT SLEEP(600);" | mariadb ) &\n'
        'pid=$!\necho "$pid" > /run/h.pid\nwait "$pid"\n',
        "#!/bin/sh\n",
        "for the mariadb session it started in the background on line 2",
        id="wait-pid-variable",
    ),
    pytest.param(
        f"#!/bin/sh\nhold() {{\n  {HOLD}\n}}\nhold &\nwait\n",
        "#!/bin/sh\n",
        "('wait' on line 6) for the mysql session it started in the background on line 3",
        id="wait-function-run-in-background",
    ),
    pytest.param(
        f'#!/bin/sh\nF=/run/hold\n{HOLD} &\ntouch $F\nwhile [ -e "$F" ]; do\n  sleep 1\ndone\n',
        "#!/bin/sh\nrm -f /run/hold\n",
        "loops (line 5) until /run/hold is removed, and only the post-script removes it "
        "(post-script line 2).",
        id="flag-removed",
    ),
    pytest.param(
        "#!/bin/sh\nwhile test ! -f /run/thaw; do sleep 1; done\n",
        "#!/bin/sh\necho done > /run/thaw\n",
        "until /run/thaw exists, and only the post-script creates it (post-script line 2).",
        id="flag-created",
    ),
    pytest.param(
        f"#!/bin/sh\n{HOLD} &\npid=$!\nwhile kill -0 $pid 2>/dev/null; do sleep 1; done\n",
        "#!/bin/sh\npkill -f SLEEP\n",
        "loops (line 4) until process $pid has exited, which happens only when the post-script "
        "kills it (post-script line 2).",
        id="process-killed",
    ),
    pytest.param(
        "#!/bin/sh\nmkfifo /run/go\nmysql -e 'FLUSH TABLES'\nread x < /run/go\n",
        "#!/bin/sh\necho go > /run/go\n",
        "reads the FIFO /run/go (line 4), which blocks until the post-script writes to it "
        "(post-script line 2).",
        id="fifo-read",
    ),
    pytest.param(
        "#!/bin/sh\nQ=/run/go\nwhile read line; do :; done < $Q\n",
        "#!/bin/sh\nQ=/run/go\nmkfifo $Q\nexec 3>$Q\n",
        "reads the FIFO /run/go (line 3)",
        id="fifo-read-by-a-loop",
    ),
    pytest.param(
        "#!/bin/sh\nmysql <<EOF\nFLUSH TABLES WITH READ LOCK;\nSELECT SLEEP(86400);\nEOF\n",
        '#!/bin/sh\nmysql -e "KILL $(cat /run/holder.id)"\n',
        "mysql session on line 2 sleeps in the foreground while it holds the lock, and only "
        "the post-script ends it (post-script line 2).",
        id="foreground-sleeper",
    ),
]


@pytest.mark.parametrize(("pre", "post", "expected"), WAITS)
def test_waits_on_post(pre: str, post: str, expected: str) -> None:
    sentence = waits_on_post(pre, post)
    assert sentence is not None and expected in sentence
    assert sentence.startswith("The pre-script") and sentence.endswith(".")
    assert sentence.count(". ") == 0  # one sentence


NO_WAITS = [
    pytest.param(
        f"#!/bin/sh\nnohup setsid {HOLD} >/dev/null 2>&1 &\necho $! > /run/h.pid\nsleep 2\n",
        '#!/bin/sh\nkill "$(cat /run/h.pid)"\n',
        id="holder-in-background-then-return",
    ),
    pytest.param(
        "#!/bin/sh\nmkfifo /run/q\nmysql < /run/q > /dev/null &\nexec 3> /run/q\n"
        'echo "FLUSH TABLES WITH READ LOCK; SELECT SLEEP(600);" >&3\n',
        '#!/bin/sh\necho "UNLOCK TABLES;" > /run/q\n',
        id="fifo-fed-holder",
    ),
    pytest.param(
        f"#!/bin/sh\ntouch /run/hold\n(\n  {HOLD} &\n"
        "  while [ -f /run/hold ]; do sleep 1; done\n  kill $!\n) &\n",
        "#!/bin/sh\nrm -f /run/hold\n",
        id="loop-inside-a-background-group",
    ),
    pytest.param(
        "#!/bin/sh\nnohup sh -c 'while [ -f /run/hold ]; do sleep 1; done' &\n",
        "#!/bin/sh\nrm -f /run/hold\n",
        id="loop-in-a-quoted-background-command",
    ),
    pytest.param(
        f"#!/bin/sh\n{HOLD} &\nmysqldump db > /b/db.sql &\nwait $!\n",
        "#!/bin/sh\n",
        id="wait-for-another-job",
    ),
    pytest.param(
        "#!/bin/sh\nrm -f /run/locked\n"
        "( mysql -e 'FLUSH TABLES WITH READ LOCK'; touch /run/locked; sleep 600 ) &\n"
        "until [ -f /run/locked ]; do sleep 1; done\n",
        "#!/bin/sh\nrm -f /run/locked\n",
        id="wait-for-the-holder-to-say-it-holds",
    ),
    pytest.param(
        "#!/bin/sh\nwhile [ -f /run/hold ]; do sleep 1; done\n",
        "#!/bin/sh\ntouch /run/hold\n",
        id="post-does-something-else-to-the-flag",
    ),
    pytest.param(
        '#!/bin/sh\nkill "$(cat /run/old.pid)"\n'
        'while kill -0 "$(cat /run/old.pid)"; do sleep 1; done\n',
        '#!/bin/sh\nkill "$(cat /run/h.pid)"\n',
        id="pre-ends-an-old-holder-itself",
    ),
    pytest.param(
        "#!/bin/sh\nmysql -e 'SELECT SLEEP(2); FLUSH TABLES'\n",
        "#!/bin/sh\nkill 1\n",
        id="short-sleep-without-a-lock",
    ),
    pytest.param(
        f"#!/bin/sh\n{HOLD}\n",
        "#!/bin/sh\nmysql -e 'UNLOCK TABLES'\n",
        id="foreground-sleeper-nobody-kills",
    ),
    pytest.param("#!/bin/sh\nwait\n", "#!/bin/sh\n", id="wait-with-no-holder"),
]


@pytest.mark.parametrize(("pre", "post"), NO_WAITS)
def test_no_wait_on_post(pre: str, post: str) -> None:
    assert waits_on_post(pre, post) is None


def test_find_wait_gives_the_line() -> None:
    found = find_wait("#!/bin/sh\n\nuntil [ -f /run/t ]\ndo\n  sleep 1\ndone\n", "touch /run/t\n")
    assert found is not None and found.line == 3
