"""Store detection on real trees, the varint decoders, rootless roots, and a real vfs root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockerdu.locate import Location, detect_store, rootless_root
from dockerdu.readers.containerd import uvarint, varint
from dockerdu.scan import Options, build_report
from tests import realdocker as rd


def _touch(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _container(root: Path, cid: str, driver: str) -> None:
    _touch(root / "containers" / cid / "config.v2.json", json.dumps({"ID": cid, "Driver": driver}).encode())


SNAPS = "containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots"


def test_graphdriver_root(tmp_path: Path) -> None:
    _touch(tmp_path / "image/overlay2/layerdb/sha256" / ("a" * 64) / "diff")
    (tmp_path / "overlay2" / "l").mkdir(parents=True)
    (tmp_path / "containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots").mkdir(parents=True)
    store = detect_store(tmp_path)
    assert (store.store, store.driver, store.unused) == ("overlay2", "overlay2", ())


def test_containerd_root_and_abandoned_overlay2(tmp_path: Path) -> None:
    (tmp_path / SNAPS / "1" / "fs").mkdir(parents=True)
    _touch(tmp_path / "image/overlay2/imagedb/content/sha256" / ("b" * 64))
    (tmp_path / "overlay2" / ("c" * 64)).mkdir(parents=True)
    _container(tmp_path, "d" * 64, "overlayfs")
    store = detect_store(tmp_path)
    assert (store.store, store.driver) == ("containerd", "overlayfs")
    assert store.unused == ("image/overlay2", "overlay2")


def test_containers_decide_when_both_hold_data(tmp_path: Path) -> None:
    (tmp_path / SNAPS / "1" / "fs").mkdir(parents=True)
    _touch(tmp_path / "image/overlay2/imagedb/content/sha256" / ("b" * 64))
    _container(tmp_path, "d" * 64, "overlay2")
    store = detect_store(tmp_path)
    assert (store.store, store.driver) == ("overlay2", "overlay2")
    assert store.unused == (
        "containerd/daemon/io.containerd.snapshotter.v1.overlayfs",
        "containerd/daemon/io.containerd.content.v1.content",
    )


def test_vfs_root_detected(tmp_path: Path) -> None:
    (tmp_path / "vfs" / "dir" / ("e" * 64)).mkdir(parents=True)
    (tmp_path / "image" / "vfs").mkdir(parents=True)
    assert detect_store(tmp_path).store == "vfs"


@pytest.mark.parametrize(
    ("data", "unsigned", "signed"),
    [(b"\x00", 0, 0), (b"\x01", 1, -1), (b"\x80\x80\xf9\x01", 4079616, 2039808), (b"\xd0\x01", 208, 104)],
)
def test_varints(data: bytes, unsigned: int, signed: int) -> None:
    assert (uvarint(data), varint(data)) == (unsigned, signed)


def test_varint_truncated() -> None:
    with pytest.raises(ValueError):
        uvarint(b"\x80\x80")


def test_rootless_root() -> None:
    assert rootless_root({"XDG_DATA_HOME": "/home/u/data", "HOME": "/home/u"}) == Path("/home/u/data/docker")
    assert rootless_root({"HOME": "/home/u"}) == Path("/home/u/.local/share/docker")


@pytest.mark.docker
def test_vfs_root_equals_engine_api_and_du(tmp_path: Path) -> None:
    """A real 20.10 daemon on vfs: image figures equal /system/df, totals add up to du, no orphan."""
    rd.require_docker("20.10")
    with rd.PrivateDaemon("20.10", tmp_path, config={"storage-driver": "vfs"}) as d:
        tar = rd.busybox_rootfs_tar(tmp_path / "rootfs")
        d.docker("import", "--change", 'CMD ["sh"]', str(tar), rd.BASE)
        rd.build_image(d, rd.APP1, f"FROM {rd.BASE}\nRUN head -c {rd.APP1_FILE} /dev/zero > /a.bin\n")
        d.docker("run", "--name", rd.EXITED, "--network", "none", rd.APP1, "sh", "-c", "echo hi > /o.txt")
        df = rd.system_df(d)
    report = build_report(Location(d.root, "--root", None), Options(jobs=1))
    assert (report.store, report.driver) == ("vfs", "vfs")
    ours = {i.id: (i.size, i.shared_size, i.containers) for i in report.images}
    assert ours == {i["Id"]: (i["Size"], i["SharedSize"], i["Containers"]) for i in df["Images"]}
    assert report.docker.layers_size == df["LayersSize"]
    assert [c.rw_size for c in report.containers] == [None]  # vfs SizeRw is a naive diff: not claimed
    assert report.containers[0].rw_disk > 0
    t = report.totals
    parts = [t.images, t.containers, t.logs, t.volumes, t.build_cache, t.orphans, t.metadata, t.other]
    assert sum(p or 0 for p in parts) == t.root_disk == rd.du_bytes(d.root)
    assert report.orphans == ()
    assert t.other == 0
    for image in report.images:
        assert image.disk == rd.du_bytes(*(d.root / "vfs/dir" / layer.cache_id for layer in image.layers))
