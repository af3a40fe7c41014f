"""``vmsnap lint --framework gcp``: the engine's pre-check as errors, the agent's pitfalls as
warnings (pytest_vmsnap/lint/gcp_lint.py), and the shipped GCP sample scripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_vmsnap.data import sample_scripts as sample_scripts_dir
from pytest_vmsnap.framework.gcp import config, discovery
from pytest_vmsnap.framework.gcp.engine import GcpEngine
from pytest_vmsnap.lint import gcp_lint, report
from pytest_vmsnap.lint.frameworks import lint_framework, warning_ids

OK_CFG = "[Snapshots]\nenabled = true\n"
OK = "#!/bin/sh\nexit 0\n"


def write(root: Path, location: str, text: str, mode: int = 0o755) -> None:
    path = root / location.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def machine(root: Path, cfg: str = OK_CFG, pre: str = OK, post: str = OK) -> Path:
    write(root, config.CONFIG_PATH, cfg, 0o644)
    write(root, discovery.PRE, pre)
    write(root, discovery.POST, post)
    return root


def ids(findings: list[report.Finding]) -> list[str]:
    return [f.id for f in findings]


def test_ids_stable_and_prefixed() -> None:
    """Every warning id is lower-case with dashes, starts with gcp-, and is registered."""
    assert all(i.startswith("gcp-") and i == i.lower() for i in gcp_lint.WARNING_IDS)
    assert set(gcp_lint.WARNING_IDS) <= set(warning_ids())
    assert len(set(gcp_lint.WARNING_IDS)) == len(gcp_lint.WARNING_IDS)


def test_clean_machine_has_no_findings(tmp_path: Path) -> None:
    """A minimal config and two trivial scripts: nothing to report."""
    assert gcp_lint.lint(machine(tmp_path), GcpEngine()) == []


def test_precheck_errors_become_errors(tmp_path: Path) -> None:
    """The engine's pre-check findings are errors with the agent's code names."""
    root = machine(tmp_path, cfg="[Snapshots]\nenabled = false\n")
    found = gcp_lint.lint(root, GcpEngine())
    assert [(f.severity, f.id) for f in found] == [(report.ERROR, "SNAPSHOTS_NOT_ENABLED")]
    root2 = machine(tmp_path / "b", pre="exit 0\n")
    (err,) = gcp_lint.lint(root2, GcpEngine())
    assert (err.severity, err.name, err.code) == (report.ERROR, "UNHANDLED_SCRIPT_ERROR", 4)
    assert "exec format error" in err.message


def test_lint_framework_entry(tmp_path: Path) -> None:
    """lint_framework('gcp') reaches this module and marks the pre-check failed on errors."""
    rep = lint_framework(machine(tmp_path, pre="exit 0\n"), "gcp")
    assert rep.precheck_codes == {"gcp": 1} and rep.errors


@pytest.mark.parametrize(
    ("script", "wid"),
    [
        ("#!/bin/sh\n[ -f /x ] || exit 124\n", "gcp-exit-124"),
        ("#!/bin/sh\nset -e\ntimeout 5 psql -c 'CHECKPOINT'\n", "gcp-timeout-command"),
        ("#!/bin/sh\nsleep 100 &\n", "gcp-background-keeps-output"),
        ("#!/bin/sh\n( sleep 100 ) >/dev/null &\n", "gcp-background-keeps-output"),
        ("#!/bin/sh\nsleep 100 2>&1 >/dev/null &\n", "gcp-background-keeps-output"),
        ("#!/bin/sh\nsleep 100 &>/dev/null &\n", "gcp-background-keeps-output"),
        ("#!/bin/sh\nHOLD=${1:-300}\n", "gcp-positional-arg"),
        ('#!/bin/sh\necho "$2"\n', "gcp-positional-arg"),
        ("#!/bin/sh\nif [[ -f /x ]]; then :; fi\n", "gcp-bashism"),
        ("#!/bin/sh\nfsfreeze -f /data\n", "gcp-script-freezes-fs"),
        ('#!/bin/sh\nmariadb -e "FLUSH TABLES WITH READ LOCK"\n', "lock-released-on-exit"),
    ],
)
def test_script_warning(tmp_path: Path, script: str, wid: str) -> None:
    """Each script pitfall the agent lets through gives its warning id."""
    found = gcp_lint.lint(machine(tmp_path, pre=script), GcpEngine())
    assert wid in ids(found), [f.message for f in found]
    assert all(f.severity == report.WARNING for f in found)


@pytest.mark.parametrize(
    "script",
    [
        "#!/bin/sh\nsleep 100 </dev/null >/dev/null 2>&1 &\n",
        "#!/bin/bash\nsleep 100 &>/dev/null &\n",
        "#!/bin/sh\n( sleep 100 ) >/dev/null 2>&1 &\n",
        "#!/bin/sh\nexec >>/var/log/s.log 2>&1\nsleep 100 &\n",
        "#!/bin/bash\nif [[ -f /x ]]; then :; fi\n",
        "#!/bin/sh\ntimeout 5 psql -c 'CHECKPOINT' || exit 1\n",
        "#!/bin/sh\nsh -c 'echo \"$1\"' _ x\n",
    ],
)
def test_script_no_warning(tmp_path: Path, script: str) -> None:
    """The fixed forms give no warning."""
    assert gcp_lint.lint(machine(tmp_path, pre=script), GcpEngine()) == []


@pytest.mark.parametrize(
    ("files", "wid"),
    [
        ({"": OK_CFG + "timeout = 30\n"}, "gcp-unknown-key"),
        ({"": OK_CFG + "timeout_in_seconds = 090\n"}, "gcp-timeout-not-decimal"),
        ({"": OK_CFG + "[ Snapshots ]\ntimeout_in_seconds = 30\n"}, "gcp-section-name"),
        (
            {
                "": OK_CFG + "timeout_in_seconds = 30\n",
                ".distro": "[Snapshots]\ntimeout_in_seconds = 5\n",
            },
            "gcp-config-overridden",
        ),
    ],
)
def test_config_warning(tmp_path: Path, files: dict[str, str], wid: str) -> None:
    """Config pitfalls: unknown keys, octal timeouts, a spaced section name, a later file
    overriding the user's value."""
    root = machine(tmp_path)
    for suffix, text in files.items():
        write(root, config.CONFIG_PATH + suffix, text, 0o644)
    assert wid in ids(gcp_lint.lint(root, GcpEngine()))


@pytest.mark.parametrize(
    ("app", "name", "expected"),
    [
        ("sqlite", "pre.sh", []),
        ("sqlite", "post.sh", []),
        ("sqlite", "pre-lock-released.sh", ["lock-released-on-exit"]),
        ("sqlite", "pre-holder-keeps-output.sh", ["gcp-background-keeps-output"]),
        ("sqlite", "pre-no-shebang.sh", ["UNHANDLED_SCRIPT_ERROR"]),
        ("mariadb", "pre.sh", []),
        ("mariadb", "post.sh", []),
        ("mariadb", "pre-lock-released.sh", ["lock-released-on-exit"]),
        ("mariadb", "pre-args-as-options.sh", ["gcp-positional-arg"]),
        ("postgres", "pre.sh", []),
        ("postgres", "post.sh", []),
        ("postgres", "pre-timeout-124.sh", ["gcp-timeout-command"]),
        ("postgres", "pre-backup-start-session.sh", ["pg-backup-start-session"]),
    ],
)
def test_samples(tmp_path: Path, app: str, name: str, expected: list[str]) -> None:
    """Each shipped GCP sample lints as its README says: the correct pair clean, each broken
    one with the finding that names its bug."""
    source = sample_scripts_dir(app) / "gcp" / name
    assert source.stat().st_mode & 0o111
    side = "post" if name.startswith("post") else "pre"
    root = machine(tmp_path, **{side: source.read_text()})
    assert ids(gcp_lint.lint(root, GcpEngine())) == expected


def test_samples_readme_lists_every_file() -> None:
    """Every sample directory's README names each of its scripts."""
    for app in ("sqlite", "mariadb", "postgres"):
        directory = sample_scripts_dir(app) / "gcp"
        readme = (directory / "README.md").read_text()
        for script in directory.glob("*.sh"):
            assert f"`{script.name}`" in readme, (app, script.name)
