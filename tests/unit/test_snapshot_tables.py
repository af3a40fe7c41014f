"""Snapshot backends without root: dm-snapshot tables, backend selection, the framework adapter,
and the copy backend on plain files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_vmsnap.framework.interfaces import Snapshotter
from pytest_vmsnap.vm.errors import VmError
from pytest_vmsnap.vm.model import Disk, DiskSpec
from pytest_vmsnap.vm.snapshot import (
    BACKENDS,
    BackendSnapshotter,
    CopyBackend,
    DevmapperBackend,
    Snapshot,
    SnapshotBackend,
    SnapshotDisk,
    delete,
    delete_restored,
    get_backend,
    restore,
    select_backend,
)
from pytest_vmsnap.vm.snapshot.devmapper import (
    linear_table,
    origin_table,
    plan_dm_disk,
    sectors,
    snapshot_table,
)

GIB = 1 << 30
NO_DM_MISC = "234 btrfs-control\n237 loop-control\n229 fuse\n"
DM_MISC = NO_DM_MISC + "236 device-mapper\n"


# --------------------------------------------------------------------------- dm tables


def test_sectors_are_512_byte_units() -> None:
    assert sectors(GIB) == 2_097_152
    for bad in (0, -512, 1000):
        with pytest.raises(VmError, match="multiple of 512"):
            sectors(bad)


def test_tables_have_the_kernel_syntax() -> None:
    assert linear_table(2_097_152, "/dev/loop3") == "0 2097152 linear /dev/loop3 0"
    assert origin_table(2_097_152, "/dev/mapper/r") == "0 2097152 snapshot-origin /dev/mapper/r"
    assert (
        snapshot_table(2_097_152, "/dev/mapper/r", "/dev/loop9")
        == "0 2097152 snapshot /dev/mapper/r /dev/loop9 P 8"
    )
    assert snapshot_table(16, "o", "c", persistent=False, chunk=16) == "0 16 snapshot o c N 16"
    for bad in (0, 12):
        with pytest.raises(VmError, match="power of two"):
            snapshot_table(16, "o", "c", chunk=bad)


def test_plan_follows_the_lvm_pattern() -> None:
    plan = plan_dm_disk("data", "/dev/loop3", "/dev/loop9", GIB, "snap1")
    assert (plan.real, plan.origin, plan.snap) == (
        "vmsnap-data-real",
        "vmsnap-data",
        "vmsnap-data-snap1",
    )
    assert plan.tables == {
        "vmsnap-data-real": "0 2097152 linear /dev/loop3 0",
        "vmsnap-data": "0 2097152 snapshot-origin /dev/mapper/vmsnap-data-real",
        # The snapshot reads the *real* device, not the origin the file system writes to.
        "vmsnap-data-snap1": "0 2097152 snapshot /dev/mapper/vmsnap-data-real /dev/loop9 P 8",
    }
    assert plan.attach == [
        ["dmsetup", "create", "vmsnap-data-real", "--table", plan.tables["vmsnap-data-real"]],
        ["dmsetup", "create", "vmsnap-data", "--table", plan.tables["vmsnap-data"]],
    ]
    # Origin suspended (without a second freeze) while the snapshot is created, then resumed.
    assert plan.take == [
        ["dmsetup", "suspend", "--nolockfs", "vmsnap-data"],
        ["dmsetup", "create", "vmsnap-data-snap1", "--table", plan.tables["vmsnap-data-snap1"]],
        ["dmsetup", "resume", "vmsnap-data"],
    ]
    assert plan.drop == [["dmsetup", "remove", "vmsnap-data-snap1"]]
    assert plan.detach == [
        ["dmsetup", "remove", "vmsnap-data"],
        ["dmsetup", "remove", "vmsnap-data-real"],
    ]


def test_plan_rejects_bad_names_and_sizes() -> None:
    with pytest.raises(VmError, match="device-mapper name"):
        plan_dm_disk("a/b", "/dev/loop3", "/dev/loop9", GIB, "s")
    with pytest.raises(VmError, match="device-mapper name"):
        plan_dm_disk("d" * 130, "/dev/loop3", "/dev/loop9", GIB, "s")
    with pytest.raises(VmError, match="multiple of 512"):
        plan_dm_disk("data", "/dev/loop3", "/dev/loop9", GIB + 1, "s")


# --------------------------------------------------------------------------- devmapper availability


def _dm(tmp_path: Path, misc: str, dmsetup: str | None = "/usr/sbin/dmsetup") -> DevmapperBackend:
    proc_misc = tmp_path / "misc"
    proc_misc.write_text(misc)
    return DevmapperBackend(proc_misc=proc_misc, which=lambda _name: dmsetup)


def test_devmapper_unavailable_without_the_kernel_driver(tmp_path: Path) -> None:
    ok, reason = _dm(tmp_path, NO_DM_MISC).available()
    assert not ok and "no device-mapper" in reason
    with pytest.raises(VmError, match="devmapper snapshot unavailable: the kernel has no"):
        _dm(tmp_path, NO_DM_MISC).take([], tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_devmapper_needs_dmsetup_too(tmp_path: Path) -> None:
    ok, reason = _dm(tmp_path, DM_MISC, dmsetup=None).available()
    assert not ok and "dmsetup" in reason
    assert _dm(tmp_path, DM_MISC).available()[0]
    # Even where the kernel has it, running the plan is not implemented: said, not attempted.
    with pytest.raises(VmError, match="not implemented"):
        _dm(tmp_path, DM_MISC).take([], tmp_path / "never")


def test_devmapper_unreadable_proc_misc(tmp_path: Path) -> None:
    backend = DevmapperBackend(proc_misc=tmp_path / "missing")
    ok, reason = backend.available()
    assert not ok and "cannot read" in reason


# --------------------------------------------------------------------------- selection


def test_registry_and_flags() -> None:
    assert list(BACKENDS) == ["reflink", "copy", "btrfs", "devmapper"]
    for name, cls in BACKENDS.items():
        backend = get_backend(name, Path("/pool"))
        assert isinstance(backend, cls) and backend.name == name and backend.pool == Path("/pool")
        # The VM's inner file systems are frozen, never the pool: all may run frozen.
        assert backend.freeze_compatible
    with pytest.raises(VmError, match="unknown snapshot backend 'zfs'"):
        get_backend("zfs")


def test_reflink_and_btrfs_need_a_pool() -> None:
    assert get_backend("reflink").available() == (
        False,
        "reflink needs a pool directory to probe (XFS with reflink=1 or btrfs)",
    )
    assert not get_backend("btrfs").available()[0]


def _fake_available(monkeypatch: pytest.MonkeyPatch, answers: dict[str, bool]) -> None:
    for name, ok in answers.items():
        monkeypatch.setattr(
            BACKENDS[name], "available", lambda self, ok=ok: (ok, "yes" if ok else "nope")
        )


def test_select_named_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_available(monkeypatch, {"reflink": False, "copy": True})
    assert select_backend("copy", Path("/pool")).name == "copy"
    with pytest.raises(VmError, match="'reflink' cannot be used here: nope"):
        select_backend("reflink", Path("/pool"))


def test_select_auto_prefers_reflink_then_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_available(monkeypatch, {"reflink": True, "copy": True})
    assert select_backend(None, Path("/pool")).name == "reflink"
    _fake_available(monkeypatch, {"reflink": False, "copy": True})
    assert select_backend(None, Path("/pool")).name == "copy"
    _fake_available(monkeypatch, {"reflink": False, "copy": False})
    with pytest.raises(VmError, match="reflink: nope; copy: nope"):
        select_backend(None, Path("/pool"))


# --------------------------------------------------------------------------- adapter


class _Failing(SnapshotBackend):
    name = "failing"

    def take(self, disks, dest_dir, skew_s=0.0):  # type: ignore[no-untyped-def]
        raise OSError("disk on fire")


def test_adapter_never_raises() -> None:
    snapper: Snapshotter = BackendSnapshotter(_Failing(), [], Path("/nowhere"))
    result = snapper.snapshot()
    assert (result.code, result.taken, result.backend) == (2, False, "failing")
    assert "disk on fire" in result.message
    assert isinstance(snapper, BackendSnapshotter) and snapper.last is None


def test_snapshot_properties() -> None:
    spec_a, spec_b = DiskSpec("a", "/a"), DiskSpec("b", "/b")
    snap = Snapshot(
        "copy",
        Path("/s"),
        [
            SnapshotDisk(spec_a, Path("/p/a.img"), Path("/s/a.img"), 10.0, 10.1),
            SnapshotDisk(spec_b, Path("/p/b.img"), Path("/s/b.img"), 10.4, 10.5),
        ],
        0.5,
    )
    assert snap.images == [Path("/s/a.img"), Path("/s/b.img")]
    assert snap.specs == [spec_a, spec_b]
    assert snap.times == [(10.0, 10.1), (10.4, 10.5)]
    assert snap.skew_s == pytest.approx(0.5)
    assert snap.to_dict()["disks"][1]["name"] == "b"  # type: ignore[index]


# --------------------------------------------------------------------------- copy on plain files


def _disks(tmp_path: Path) -> list[Disk]:
    pool = tmp_path / "pool"
    pool.mkdir()
    out = []
    for name, data in (("data", b"D" * 10_000), ("wal", b"W" * 5_000)):
        image = pool / f"vm-{name}.img"
        image.write_bytes(data)
        out.append(Disk(DiskSpec(name, f"/var/lib/{name}"), image))
    return out


def test_copy_take_restore_delete(tmp_path: Path) -> None:
    disks = _disks(tmp_path)
    snap = CopyBackend(tmp_path).take(disks, tmp_path / "snap", skew_s=0.05)
    assert [p.read_bytes() for p in snap.images] == [d.image.read_bytes() for d in disks]
    assert snap.disks[1].start_s - snap.disks[0].end_s >= 0.05

    disks[0].image.write_bytes(b"later")
    restored = restore(snap, tmp_path / "restored")
    assert [d.image.read_bytes() for d in restored] == [b"D" * 10_000, b"W" * 5_000]
    assert all(d.uuid_clone and d.loopdev is None for d in restored)
    assert [d.spec for d in restored] == [d.spec for d in disks]

    restored[0].loopdev = "/dev/loop99"
    with pytest.raises(VmError, match="still attached"):
        delete_restored(restored)
    restored[0].loopdev = None
    delete_restored(restored)
    delete(snap)
    assert not (tmp_path / "restored").exists() and not (tmp_path / "snap").exists()
    assert all(d.image.exists() for d in disks)


def test_take_refuses_existing_dir_and_cleans_up_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disks = _disks(tmp_path)
    (tmp_path / "taken").mkdir()
    with pytest.raises(VmError, match="already exists"):
        CopyBackend().take(disks, tmp_path / "taken")

    calls = []

    def copy_then_fail(self: CopyBackend, src: Path, dst: Path) -> None:
        calls.append(src)
        if len(calls) == 2:
            raise VmError("no space left")
        dst.write_bytes(src.read_bytes())

    monkeypatch.setattr(CopyBackend, "_copy", copy_then_fail)
    with pytest.raises(VmError, match="no space left"):
        CopyBackend().take(disks, tmp_path / "half")
    assert not (tmp_path / "half").exists()


def test_take_checks_its_disks(tmp_path: Path) -> None:
    disks = _disks(tmp_path)
    with pytest.raises(VmError, match="no disks"):
        CopyBackend().take([], tmp_path / "s")
    with pytest.raises(VmError, match="unique"):
        CopyBackend().take([disks[0], disks[0]], tmp_path / "s")
    with pytest.raises(VmError, match="skew_s"):
        CopyBackend().take(disks, tmp_path / "s", skew_s=-1)
    disks[1].image.unlink()
    with pytest.raises(VmError, match="does not exist"):
        CopyBackend().take(disks, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_restore_refuses_a_deleted_snapshot(tmp_path: Path) -> None:
    snap = CopyBackend().take(_disks(tmp_path), tmp_path / "snap")
    delete(snap)
    with pytest.raises(VmError, match="not taken"):
        restore(snap, tmp_path / "r")
