"""The CI examples (``examples/ci/``) parse, have the shape their CI needs, and use only real
flags, extras, packages and the README's file layout."""

from __future__ import annotations

import re
import shlex
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

import pytest_vmsnap

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
CI = REPO / "examples" / "ci"
# Not in the project's list of host packages: the distribution's Python and certificates.
EXTRA_PACKAGES = {"python3", "ca-certificates"}


def _load(name: str) -> dict[Any, Any]:
    doc = yaml.safe_load((CI / name).read_text())
    assert isinstance(doc, dict), name
    return doc


def _github_job() -> dict[str, Any]:
    job: dict[str, Any] = _load("github-actions.yml")["jobs"]["vmsnap"]
    return job


def _gitlab_job() -> dict[str, Any]:
    job: dict[str, Any] = _load("gitlab-ci.yml")["vmsnap"]
    return job


def _commands() -> dict[str, list[str]]:
    """Every shell command of each example, continuation lines joined."""
    github = [s["run"] for s in _github_job()["steps"] if "run" in s]
    job = _gitlab_job()
    gitlab = [*job["before_script"], *job["script"]]
    out = {}
    for name, blocks in (("github", github), ("gitlab", gitlab)):
        text = "\n".join(blocks).replace("\\\n", " ")
        out[name] = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return out


def _pytest_commands() -> dict[str, list[str]]:
    return {
        name: [c for c in commands if re.search(r"\bpytest --vmsnap\b", c)]
        for name, commands in _commands().items()
    }


def test_github_workflow_runs_as_root_on_ubuntu() -> None:
    doc = _load("github-actions.yml")
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert {"push", "pull_request"} <= set(on)
    job = _github_job()
    assert job["runs-on"] == "ubuntu-latest"
    steps = job["steps"]
    assert all(("uses" in s) != ("run" in s) for s in steps), "each step uses or runs"
    uses = [s["uses"] for s in steps if "uses" in s]
    assert any(u.startswith("actions/checkout@") for u in uses)
    assert any(u.startswith("actions/setup-python@") for u in uses)
    (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["if"] == "always()" and "vmsnap-report/" in upload["with"]["path"]
    (command,) = _pytest_commands()["github"]
    assert command.startswith("sudo .venv/bin/pytest "), "root through sudo, the venv's pytest"


def test_gitlab_job_is_a_privileged_debian_12_job() -> None:
    job = _gitlab_job()
    assert job["image"] == "debian:12"
    assert "privileged" in job["tags"]
    assert job["artifacts"]["when"] == "always"
    (command,) = _pytest_commands()["gitlab"]
    junit = re.search(r"--junit-xml=(\S+)", command)
    assert junit and job["artifacts"]["reports"]["junit"] == junit.group(1)
    report = re.search(r"--vmsnap-report=(\S+)", command)
    assert report and f"{report.group(1)}/" in job["artifacts"]["paths"]


def test_pytest_options_are_real(pytester: pytest.Pytester) -> None:
    """Every option the examples give pytest is one that pytest with this plugin knows."""
    result = pytester.runpytest("--help")
    assert result.ret == 0
    known = set(re.findall(r"(--[a-z][a-z0-9-]*)", result.stdout.str()))
    assert "--vmsnap" in known and "--vmsnap-report" in known
    for name, commands in _pytest_commands().items():
        for command in commands:
            options = {t.split("=")[0] for t in shlex.split(command) if t.startswith("--")}
            assert options and options <= known, (name, options - known)


def test_install_lines_name_real_extras() -> None:
    extras = set(metadata.metadata("pytest-vmsnap").get_all("Provides-Extra") or [])
    for name, commands in _commands().items():
        installs = [c for c in commands if "pip install" in c]
        assert installs, name
        for command in installs:
            wanted = re.findall(r"pytest-vmsnap\[([a-z,]+)\]", command)
            assert wanted, command
            assert set(",".join(wanted).split(",")) <= extras, command


def _host_packages() -> set[str]:
    """The Debian packages the project installs on its own machines: the list shipped in the
    package (``vmsnap setup``), or ``scripts/install-deps.sh``'s own array."""
    shipped = Path(pytest_vmsnap.__file__).parent / "setup" / "debian-packages.txt"
    if shipped.is_file():
        lines = (line.split("#")[0].split() for line in shipped.read_text().splitlines())
        return {words[0] for words in lines if words}
    block = re.search(
        r"PACKAGES=\((.*?)\)", (REPO / "scripts" / "install-deps.sh").read_text(), re.S
    )
    assert block, "no list of host packages found"
    return set(block.group(1).split())


def test_host_packages_are_the_projects() -> None:
    """What the examples install from the distribution is what the project installs on its
    own machines (less the container stand-in's and the report test's)."""
    ours = _host_packages() | EXTRA_PACKAGES
    for name, commands in _commands().items():
        (install,) = [c for c in commands if "apt-get install" in c]
        packages = {t for t in install.split("apt-get install", 1)[1].split() if t[0] != "-"}
        assert {"util-linux", "e2fsprogs", "postgresql"} <= packages, name
        assert packages <= ours, (name, packages - ours)


def test_modes_follow_the_readme_layout() -> None:
    """The files the examples chmod are the ones the README's ini keys name."""
    readme = (REPO / "README.md").read_text()
    keys = dict(re.findall(r'^(vmsnap_(?:config|pre|post)) = "([^"]+)"', readme, re.M))
    assert set(keys) == {"vmsnap_config", "vmsnap_pre", "vmsnap_post"}
    for name, commands in _commands().items():
        chmod = " ".join(c for c in commands if c.startswith("chmod "))
        assert f"chmod 600 {keys['vmsnap_config']}" in chmod, name
        assert f"chmod 700 {keys['vmsnap_pre']} {keys['vmsnap_post']}" in chmod, name
