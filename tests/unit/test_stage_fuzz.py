"""Property tests for staging: whatever the config and the machine root hold, the user's files
land inside the root or are refused in one line (StageError); nothing is ever written outside
the root, and no other exception escapes.

Each example builds a fresh machine root with random directories and symlinks (absolute and
relative, dangling, looping, pointing at a "host" directory beside the root) and a config with
random locations (``..``, absolute, relative, unicode, spaces, trailing slashes, /proc paths,
wrong types) or random bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_vmsnap.cycle.stage import StageError, stage

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,  # the same 300 cases on every run: CI never passes by luck
    suppress_health_check=[HealthCheck.too_slow],
)

NAMES = st.sampled_from(
    ["etc", "azure", "opt", "usr", "local", "app", "a b", "é", "..", ".", "x", "proc", "tmp"]
)
PATHS = st.lists(NAMES, min_size=0, max_size=5).map("/".join)
LOCATIONS = st.one_of(
    PATHS.map(lambda p: "/" + p),
    PATHS,
    PATHS.map(lambda p: "/" + p + "/"),
    st.just("/proc/self/root/etc/passwd"),
    st.text(max_size=30),
)
CONFIGS = st.one_of(
    st.fixed_dictionaries({"preScriptLocation": LOCATIONS, "postScriptLocation": LOCATIONS}).map(
        json.dumps
    ),
    st.dictionaries(
        st.sampled_from(["preScriptLocation", "postScriptLocation", "x"]),
        st.one_of(st.integers(), st.none(), st.lists(st.text(max_size=5)), LOCATIONS),
    ).map(json.dumps),
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
)
LINKS = st.lists(
    st.tuples(PATHS, st.one_of(PATHS.map(lambda p: "/" + p), PATHS, st.just("HOST"))),
    max_size=6,
)


def _tree(base: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            yield Path(dirpath) / name


@FUZZ
@example(config_text='{"preScriptLocation": "\\u0000"}', links=[], dirs=[])
@example(config_text='{"preScriptLocation": "/opt/up/x.sh"}', links=[("opt/up", "HOST")], dirs=[])
@given(config_text=CONFIGS, links=LINKS, dirs=st.lists(PATHS, max_size=4))
def test_staging_stays_inside_the_root(
    config_text: str, links: list[tuple[str, str]], dirs: list[str]
) -> None:
    work = Path(tempfile.mkdtemp(prefix="vmsnap-stage-fuzz-"))
    try:
        host, root = work / "host", work / "root"
        host.mkdir()
        (host / "keep").write_text("host file\n")
        root.mkdir()
        for d in dirs:
            target = os.path.normpath(root / d)
            if target.startswith(str(root) + "/"):
                with contextlib.suppress(OSError):  # through a symlink made above: left out
                    os.makedirs(target, exist_ok=True)
        for where, to in links:
            at = os.path.normpath(root / where)
            if at.startswith(str(root) + "/") and not os.path.lexists(at):
                with contextlib.suppress(OSError):
                    os.makedirs(os.path.dirname(at), exist_ok=True)
                    os.symlink(str(host) if to == "HOST" else to, at)
        config = work / "config.json"
        config.write_text(config_text, encoding="latin-1")
        pre = work / "pre.sh"
        pre.write_text("exit 0\n")
        post = work / "post.sh"
        post.write_text("exit 0\n")
        outside_before = {
            p: p.read_bytes() if p.is_file() else None for p in [*_tree(host), config, pre, post]
        }
        try:
            stage(root, config, pre, post)
        except StageError as err:
            assert str(err) and "\n" not in str(err)
        assert {
            p: p.read_bytes() if p.is_file() else None for p in [*_tree(host), config, pre, post]
        } == outside_before
        assert sorted(os.listdir(work)) == ["config.json", "host", "post.sh", "pre.sh", "root"]
    finally:
        shutil.rmtree(work)
