"""Images: the apt mirror read from the machine's config, hashes, build, cache, build lock, and
what the images hold (Debian packages as on a server, Debian's python3 running our package)."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pytest_vmsnap.vm.docker import images

REPO = Path(__file__).resolve().parents[2]

DEB822 = """\
Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no
"""

ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/etc/k.gpg] http://old.example/debian bookworm main contrib
deb http://other.example/ubuntu jammy main
"""


def _etc(tmp_path: Path, deb822: str = "", one_line: str = "") -> Path:
    d = tmp_path / "etc" / "apt" / "sources.list.d"
    d.mkdir(parents=True)
    if deb822:
        (d / "debian.sources").write_text(deb822)
    if one_line:
        (tmp_path / "etc" / "apt" / "sources.list").write_text(one_line)
    return tmp_path


def test_mirror_from_deb822(tmp_path: Path) -> None:
    root = _etc(tmp_path, DEB822)
    assert images.debian_mirror(root) == "http://mirror.example/debian"
    sources = images.apt_sources(root)
    assert [s.uris[0] for s in sources] == [
        "http://mirror.example/debian",
        "http://security.example/debian-security",
    ]
    assert sources[0].signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"


def test_mirror_from_one_line_sources(tmp_path: Path) -> None:
    root = _etc(tmp_path, one_line=ONE_LINE)
    assert images.debian_mirror(root) == "http://old.example/debian"
    assert images.apt_sources(root)[0].signed_by == "/etc/k.gpg"
    with pytest.raises(images.ImageError, match="no apt source for trixie main"):
        images.debian_mirror(root, suite="trixie")


def test_machine_mirror_is_read_not_written() -> None:
    """The mirror comes from this machine's apt config; no URL is written in our code."""
    if not Path("/etc/apt").is_dir():
        pytest.skip("no apt here")
    mirror = images.debian_mirror()
    assert mirror.startswith(("http://", "https://", "file:/"))
    host = re.sub(r"^[a-z]+://", "", mirror).split("/")[0]
    for path in sorted((REPO / "pytest_vmsnap").rglob("*")):
        if path.is_file():
            assert host not in path.read_text(errors="replace"), path


def test_hashes_follow_the_recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "images"
    shutil.copytree(images.RECIPES, copy)
    monkeypatch.setattr(images, "RECIPES", copy)
    base, pg = images.base_hash(), images.recipe_hash("pg15")
    assert images.image_ref("postgres") == f"vmsnap/pg15:{pg}"
    assert images.recipe_hash("mariadb") != pg
    with (copy / "pg15" / "Dockerfile").open("a") as f:
        f.write("# changed\n")
    assert images.recipe_hash("pg15") != pg and images.base_hash() == base
    (copy / "base" / "rootfs" / "usr" / "sbin" / "policy-rc.d").chmod(0o700)
    assert images.base_hash() != base  # modes count too
    assert images.recipe_hash("mariadb") != images.recipe_hash("mariadb", base)
    with pytest.raises(images.ImageError, match="no image recipe 'mongodb'"):
        images.recipe_name("mongodb")


def test_service_users_keep_the_host_ids() -> None:
    args = images.build_args("pg15")["VMSNAP_USERS"]
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        assert args == ""
    else:
        assert args.startswith(f"postgres:{entry.pw_uid}:{entry.pw_gid}:")
    assert images.build_args("sqlite") == {"VMSNAP_USERS": ""}


def test_build_then_cache_hit(engine: object) -> None:
    """Every app image exists after ensure_image; a second call builds nothing, at once."""
    client = engine.client
    for name in images.APP_IMAGES.values():
        first = images.ensure_image(name, client)
        assert first.ref == images.image_ref(name)
        again = images.ensure_image(name, client)
        assert not again.built
        assert again.seconds < 1.0, f"cache hit for {name} took {again.seconds:.2f} s"
        labels = client.images.get(again.ref).labels
        assert labels[images.LABEL_RECIPE] == again.ref.split(":")[1]
    base = client.images.get(images.base_ref())
    assert base.labels[images.LABEL_RECIPE] == images.base_hash()


def test_build_lock_one_builder(engine: object, tmp_path: Path) -> None:
    """Two processes ask for the same new image at once: one builds it, the other waits for
    the lock and finds it (a tiny recipe on the cached base keeps this quick)."""
    recipes = tmp_path / "recipes"
    shutil.copytree(images.RECIPES / "base", recipes / "base")
    (recipes / "tiny").mkdir()
    marker = uuid.uuid4().hex
    (recipes / "tiny" / "Dockerfile").write_text(
        f"ARG BASE\nFROM ${{BASE}}\nRUN sleep 1 && echo {marker} > /etc/vmsnap-tiny\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "VMSNAP_IMAGE_RECIPES": str(recipes)}
    code = (
        "from pytest_vmsnap.vm.docker import images\n"
        "b = images.ensure_image('tiny')\n"
        "print(b.built, b.ref)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1].decode()[-800:] for o in outs]
    results = sorted(o[0].decode().split()[0] for o in outs)
    refs = {o[0].decode().split()[1] for o in outs}
    assert results == ["False", "True"], outs
    (ref,) = refs
    try:
        out = engine.client.containers.run(
            ref, ["cat", "/etc/vmsnap-tiny"], remove=True, network_mode="none"
        )
        assert out.decode().strip() == marker
        t = time.monotonic()
        again = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        assert again.stdout.split()[0] == "False"
        assert time.monotonic() - t < 15
    finally:
        engine.client.images.remove(ref, force=True)


@pytest.mark.parametrize(
    ("name", "packages", "lib"),
    [
        ("pg15", ["postgresql-15", "postgresql-client-15", "python3-psycopg"], "psycopg"),
        ("mariadb", ["mariadb-server", "mariadb-client", "python3-pymysql"], "pymysql"),
        ("redis", ["redis-server", "redis-tools", "python3-redis"], "redis"),
        ("sqlite", ["sqlite3"], "sqlite3"),
    ],
)
def test_image_contents(
    images_built: dict[str, str], engine: object, name: str, packages: list[str], lib: str
) -> None:
    """Debian packages installed, services not started, our in-VM modules import with the
    image's /usr/bin/python3 from the read-only repository mount."""
    found = images.smoke(name, engine.client)
    assert found["executable"] == "/usr/bin/python3"
    assert found["python"].startswith("3.11.")
    assert found[lib]
    common = ["util-linux", "iproute2", "procps", "python3"]
    script = (
        "dpkg-query -W -f '${Package} ${Status}\\n' "
        + " ".join(common + packages)
        + "; test -x /usr/sbin/policy-rc.d; /usr/sbin/policy-rc.d; echo policy=$?;"
        " echo procs=$(ps -eo comm= | sort -u | tr '\\n' ' ')"
    )
    out = engine.client.containers.run(
        images.image_ref(name), ["sh", "-c", script], remove=True, network_mode="none"
    ).decode()
    for pkg in common + packages:
        assert f"{pkg} install ok installed" in out, out
    assert "policy=101" in out
    procs = out.split("procs=", 1)[1]
    assert not re.search(r"\b(postgres|mariadbd|mysqld|redis-server)\b", procs), procs
