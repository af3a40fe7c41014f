"""The user's own image (``vmsnap_image``): our thin layer over it, built here and cached; a
real cycle in it; one-line refusals of images that cannot be a stand-in VM.

The "user's image" is built in the set-up as a production image would be (FROM our debootstrap
base, which plays the distribution's image, plus PostgreSQL 15 from apt, an entrypoint, a
non-root user, a VOLUME, a health check), tagged ``vmsnap-test/user-postgres:prod``; it has no
python3 and no psycopg, and its ``postgres`` user has other ids than this host's, so the
layer has something to add and to renumber. Every image made here is removed by exact tag.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from appcycle import SCRIPTS_CONFIG

from pytest_vmsnap import data
from pytest_vmsnap.cycle.run import run
from pytest_vmsnap.evidence import oracle
from pytest_vmsnap.report.text import summary_line
from pytest_vmsnap.settings import Settings
from pytest_vmsnap.vm.docker import images, layer

USER_IMAGE = "vmsnap-test/user-postgres:prod"
PRODUCTION_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \\
 && rm -rf /var/lib/apt/lists/*
RUN printf '#!/bin/sh\\necho production entrypoint\\nexec "$@"\\n' > /usr/local/bin/entry.sh \\
 && chmod 755 /usr/local/bin/entry.sh
ENV PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
USER postgres
WORKDIR /var/lib/postgresql
HEALTHCHECK --interval=1s CMD pg_isready
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/entry.sh"]
CMD ["postgres"]
"""


def _build(client: Any, tag: str, dockerfile: str, **files: str) -> None:
    """``docker build`` of ``dockerfile`` (and ``files``) as ``tag``, with the host's network."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in {"Dockerfile": dockerfile, **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    buf.seek(0)
    for chunk in client.api.build(
        fileobj=buf,
        custom_context=True,
        tag=tag,
        buildargs={"BASE": images.base_ref()},
        network_mode="host",
        rm=True,
        forcerm=True,
        decode=True,
    ):
        assert "error" not in chunk, chunk["error"]


def _remove(client: Any, *tags: str) -> None:
    """Remove images by exact tag (the user's test images and the layers over them)."""
    for tag in tags:
        repo = tag.split(":")[0]
        if not any(tag in image.tags for image in client.images.list(name=repo)):
            continue
        client.images.remove(tag)


def _layer_tags(client: Any, image: str) -> list[str]:
    repo = layer.layer_repo(image)
    return [t for i in client.images.list(name=repo) for t in i.tags if t.startswith(repo + ":")]


@pytest.fixture(scope="module")
def user_image(engine: Any) -> Iterator[str]:
    client = engine.client
    images.ensure_base(client)
    _build(client, USER_IMAGE, PRODUCTION_DOCKERFILE)
    try:
        yield USER_IMAGE
    finally:
        _remove(client, *_layer_tags(client, USER_IMAGE), USER_IMAGE)


def _repo_files(tmp_path: Path) -> Settings:
    """A repository's backup/ as git checks it out (644 and 755), its deployed modes declared."""
    backup = tmp_path / "backup"
    backup.mkdir()
    config = backup / "VMSnapshotScriptPluginConfig.json"
    config.write_text(json.dumps(SCRIPTS_CONFIG, indent=2))
    config.chmod(0o644)
    for which in ("pre", "post"):
        shutil.copy(data.sample_scripts("postgres") / f"{which}.sh", backup / f"{which}.sh")
        (backup / f"{which}.sh").chmod(0o755)
    return Settings.from_mapping(
        {
            "config": "backup/VMSnapshotScriptPluginConfig.json",
            "pre": "backup/pre.sh",
            "post": "backup/post.sh",
            "app": "postgres",
            "vm": "container",
            "image": USER_IMAGE,
            "modes": "config:600 scripts:700",
            "pacing": "prompt",
        },
        base_dir=tmp_path,
    )


def test_user_image_cycle_is_application_consistent(
    user_image: str,
    engine: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The layer adds python3 and psycopg from the image's own apt sources (this host's are
    never read), gives ``postgres`` this host's ids, is cached by the image's ID; the cycle in
    the user's image, with the files' deployed modes declared, is application-consistent, and
    the image's VOLUME leaves no Docker volume behind."""
    client = engine.client

    def no_host_sources(*args: object, **kwargs: object) -> None:
        raise AssertionError("the layer read this host's apt sources")

    monkeypatch.setattr(images, "debian_mirror", no_host_sources)
    monkeypatch.setattr(images, "_rootfs_sources", no_host_sources)
    caplog.set_level(logging.INFO, logger="pytest_vmsnap.vm.docker.layer")
    first = layer.ensure_layer(user_image, "postgres", client)
    assert first.built and first.ref.startswith(layer.layer_repo(user_image) + ":")
    assert "installing python3 python3-psycopg with the image's apt sources" in caplog.text
    again = layer.ensure_layer(user_image, "postgres", client)
    assert (again.ref, again.built) == (first.ref, False)
    assert again.seconds < 1.0, f"cache hit took {again.seconds:.2f} s"
    print(f"layer: first build {first.seconds:.1f} s, cached {again.seconds * 1000:.1f} ms")
    config = client.api.inspect_image(first.ref)["Config"]
    assert (config["Entrypoint"], config["User"]) == (None, "0:0")
    assert config["Healthcheck"]["Test"] == ["NONE"]
    assert config["Labels"][layer.LABEL_FROM] == user_image

    volumes = {v.id for v in client.volumes.list()}
    monkeypatch.chdir(tmp_path)
    result = run(_repo_files(tmp_path)).to_dict()
    assert result["verdict"] == oracle.APPLICATION, (result["reasons"], result["error"])
    assert {v.id for v in client.volumes.list()} == volumes
    assert (result["image"], result["modes_declared"]) == (user_image, "config:600 scripts:700")
    assert [(f["path"], f["mode"], f["installed_mode"]) for f in result["files"]] == [
        ("backup/VMSnapshotScriptPluginConfig.json", "644", "600"),
        ("backup/pre.sh", "755", "700"),
        ("backup/post.sh", "755", "700"),
    ]
    assert "modes as deployed config:600 scripts:700" in summary_line("cycle", result)


def test_a_new_build_of_the_user_image_gets_a_new_layer(user_image: str, engine: Any) -> None:
    """The cache follows the image's ID: the same tag rebuilt gets a new layer, and the old
    layer of that name is removed."""
    client = engine.client
    old = layer.ensure_layer(user_image, "postgres", client).ref
    _build(client, user_image, PRODUCTION_DOCKERFILE + 'LABEL rebuilt="yes"\n')
    new = layer.ensure_layer(user_image, "postgres", client)
    assert new.built and new.ref != old
    assert _layer_tags(client, user_image) == [new.ref]


REFUSALS = [
    # tag, Dockerfile (FROM our base unless scratch), app, the refusal (its start and its fix)
    (
        "vmsnap-test/user-nosh:prod",
        "FROM scratch\nCOPY app /app\n",
        "sqlite",
        "it has no /bin/sh (a distroless or scratch image); use the Debian or Ubuntu image "
        "it is built from, with your application installed",
    ),
    (
        "vmsnap-test/user-notdebian:prod",
        "ARG BASE\nFROM ${BASE}\nRUN rm -f /usr/bin/apt-get /etc/os-release "
        "&& echo 'PRETTY_NAME=\"Other Linux 1\"' > /etc/os-release\n",
        "sqlite",
        "it lacks python3 and, being Other Linux 1, has no apt-get to add them: use a Debian- "
        "or Ubuntu-based image",
    ),
    (
        "vmsnap-test/user-noserver:prod",
        "ARG BASE\nFROM ${BASE}\nLABEL role=web\n",
        "postgres",
        "it has no PostgreSQL server (looked for /usr/lib/postgresql/*/bin/postgres): use the "
        "image your application runs in, with its server installed",
    ),
]


@pytest.mark.parametrize(
    ("tag", "dockerfile", "app", "why"), REFUSALS, ids=["no-sh", "no-apt", "no-server"]
)
def test_an_image_that_cannot_be_a_stand_in_is_refused_in_one_line(
    engine: Any, tag: str, dockerfile: str, app: str, why: str
) -> None:
    client = engine.client
    images.ensure_base(client)
    _build(client, tag, dockerfile, app="x")
    before = {i.id for i in client.images.list(all=True)}
    try:
        with pytest.raises(layer.UnusableImage) as err:
            layer.ensure_layer(tag, app, client)
        assert str(err.value) == f"image {tag} cannot be a stand-in VM: {why}"
        # A refusal is remembered (every cycle of a battery asks) and leaves no image behind.
        with pytest.raises(layer.UnusableImage, match="cannot be a stand-in"):
            layer.ensure_layer(tag, app, client)
        assert {i.id for i in client.images.list(all=True)} == before
        assert not _layer_tags(client, tag)
    finally:
        _remove(client, tag)


def test_an_image_not_on_this_machine_is_refused(engine: Any) -> None:
    with pytest.raises(layer.UnusableImage) as err:
        layer.ensure_layer("vmsnap-test/absent:prod", "sqlite", engine.client)
    assert str(err.value) == (
        "image vmsnap-test/absent:prod is not on this machine (vmsnap pulls nothing): docker "
        "pull, docker load or docker build it first"
    )
