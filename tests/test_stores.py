"""Store detection on real trees, the varint decoders, rootless roots, real vfs and fuse-overlayfs roots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockerdu.imageinfo import ImageInfo, analyze_images, image_doc, resolve_refs
from dockerdu.locate import Location, detect_store, rootless_root
from dockerdu.readers.containerd import uvarint, varint
from dockerdu.report import Report
from dockerdu.scan import Options, build_report, index_root
from tests import realdocker as rd


def _touch(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _container(root: Path, cid: str, driver: str) -> None:
    _touch(root / "containers" / cid / "config.v2.json", json.dumps({"ID": cid, "Driver": driver}).encode())


def _image_infos(root: Path, report: Report, top: int = 0) -> dict[str, ImageInfo]:
    """`dockerdu image` of every listed image of the report's root, by image ID."""
    index = index_root(Location(root, "--root", None), Options(), 0.0)
    refs = [image.id for image in report.images]
    return {i.id: i for i in analyze_images(index, root, resolve_refs(index, refs), top=top)}


WHITED = "ddi-whited:1"
GONE = 30_000


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
        d.docker(
            "run", "--name", rd.EXITED, "--network", "none", rd.APP1,
            "sh", "-c", "echo hi > /o.txt && chmod 600 /a.bin && rm /bin/ls",
        )  # fmt: skip
        df = rd.system_df(d)
    report = build_report(Location(d.root, "--root", None), Options(jobs=1))
    assert (report.store, report.driver) == ("vfs", "vfs")
    ours = {i.id: (i.size, i.shared_size, i.containers) for i in report.images}
    assert ours == {i["Id"]: (i["Size"], i["SharedSize"], i["Containers"]) for i in df["Images"]}
    assert report.docker.layers_size == df["LayersSize"]
    # SizeRw is the naive diff of the container's tree against the init layer's: the new
    # /o.txt and /a.bin, whose mode changed (the deleted /bin/ls counts nothing).
    assert [c["SizeRw"] for c in df["Containers"]] == [len(b"hi\n") + rd.APP1_FILE]
    assert [c.rw_size for c in report.containers] == [c["SizeRw"] for c in df["Containers"]]
    assert report.containers[0].rw_disk > 0
    t = report.totals
    parts = [t.images, t.containers, t.logs, t.volumes, t.build_cache, t.orphans, t.metadata, t.other]
    assert sum(p or 0 for p in parts) == t.root_disk == rd.du_bytes(d.root)
    assert report.orphans == ()
    assert t.other == 0
    for image in report.images:
        assert image.disk == rd.du_bytes(*(d.root / "vfs/dir" / layer.cache_id for layer in image.layers))
    # `dockerdu image`: every layer has the report's disk (its full copy) and file count.
    infos = _image_infos(d.root, report)
    for image in report.images:
        info = infos[image.id]
        assert [x.disk for x in info.layers] == [
            rd.du_bytes(d.root / "vfs/dir" / layer.cache_id) for layer in image.layers
        ]
        assert [(x.disk, x.files) for x in info.layers] == [(x.disk, x.files) for x in image.layers]
        assert (info.disk, info.unique_disk, info.size) == (image.disk, image.unique_disk, image.size)
        assert info.wasted.size is None  # full copies, not stacked: nothing is read as hidden
    doc = image_doc(Location(d.root, "--root", None), [report.images[0].id])
    assert any("full copy" in note for note in doc.notes)


@pytest.mark.docker
def test_fuse_overlayfs_root_equals_engine_api_and_du(tmp_path: Path) -> None:
    """A real 20.10 daemon on fuse-overlayfs: Docker's figures equal /system/df, totals equal du."""
    rd.require_docker("20.10")
    rd.require_fuse_overlayfs()
    with rd.PrivateDaemon("20.10", tmp_path, config={"storage-driver": "fuse-overlayfs"}) as d:
        tar = rd.busybox_rootfs_tar(tmp_path / "rootfs")
        d.docker("import", "--change", 'CMD ["sh"]', str(tar), rd.BASE)
        rd.build_image(
            d,
            rd.APP1,
            f"FROM {rd.BASE}\nRUN head -c {rd.APP1_FILE} /dev/zero > /a.bin && echo y > /g.txt"
            " && echo m > /m.txt && mkdir /d && echo x > /d/f && echo s > /d/same.txt"
            f" && touch -d @{rd.FIXED_MTIME} /d/same.txt\n",
        )
        # A file written, then deleted by a later step: bytes stored below, hidden above.
        rd.build_image(
            d, WHITED, f"FROM {rd.BASE}\nRUN head -c {GONE} /dev/zero > /gone.bin\nRUN rm /gone.bin\n"
        )
        d.docker("run", "--rm", "--network", "none", WHITED, "sh", "-c", "test ! -e /gone.bin")
        d.docker("volume", "create", rd.NAMED_VOLUME)
        d.docker(
            "run", "-d", "--name", rd.RUNNING, "--network", "none", "--stop-timeout", "1",
            "-v", f"{rd.NAMED_VOLUME}:/named", rd.APP1, "sleep", "3600",
        )  # fmt: skip
        # A new file and a hard link to it, a whiteout, a change of mode only, an append to an
        # image file, a symlink, and /d made opaque with one file changed and one recreated as
        # it was (same mode, size and mtime: no change to the naive diff).
        writes = (
            f"head -c {rd.RUNNING_RW_FILE} /dev/zero > /rw.bin && ln /rw.bin /rw.link && rm /g.txt"
            " && chmod 600 /m.txt && head -c 1000 /dev/zero >> /a.bin && ln -s /rw.bin /sym"
            " && rm -rf /d && mkdir /d && echo z > /d/f && echo s > /d/same.txt"
            f" && touch -d @{rd.FIXED_MTIME} /d/same.txt"
            f" && head -c {rd.NAMED_VOLUME_FILE} /dev/zero > /named/n.bin"
        )
        d.docker("exec", rd.RUNNING, "sh", "-c", writes)
        # `: >> /a.bin` opens the image file for writing and writes nothing: fuse-overlayfs
        # copies it up into diff/, and Docker's naive diff finds no change in it.
        d.docker(
            "run", "--name", rd.EXITED, "--network", "none", rd.APP1,
            "sh", "-c", "echo hi > /o.txt; : >> /a.bin",
        )  # fmt: skip
        df = rd.system_df(d)
        assert d.api("/info")["Driver"] == "fuse-overlayfs"
    report = build_report(Location(d.root, "--root", None), Options(jobs=1))
    assert (report.store, report.driver) == ("fuse-overlayfs", "fuse-overlayfs")
    ours = {i.id: (i.size, i.shared_size, i.containers) for i in report.images}
    assert ours == {i["Id"]: (i["Size"], i["SharedSize"], i["Containers"]) for i in df["Images"]}
    assert report.docker.layers_size == df["LayersSize"]
    volumes = {v["Name"]: v["UsageData"]["Size"] for v in df["Volumes"]}
    assert {v.name: v.size for v in report.volumes} == volumes
    # SizeRw is the naive diff: the unchanged copy-up of /a.bin, in the exited container's
    # diff/, is not in it (only /o.txt's 3 bytes are), so a walk of diff/ would not give it.
    docker_rw = {c["Names"][0].lstrip("/"): c["SizeRw"] for c in df["Containers"]}
    assert docker_rw[rd.EXITED] == len(b"hi\n")
    assert docker_rw[rd.RUNNING] == rd.RUNNING_RW_FILE + 2 + rd.APP1_FILE + 1000 + len("/rw.bin") + 2
    assert {c.name: c.rw_size for c in report.containers} == docker_rw
    by_name = {c.name: c for c in report.containers}
    assert by_name[rd.EXITED].rw_disk > rd.APP1_FILE  # the copy of /a.bin is on disk all the same
    t = report.totals
    parts = [t.images, t.containers, t.logs, t.volumes, t.build_cache, t.orphans, t.metadata, t.other]
    assert sum(p or 0 for p in parts) == t.root_disk == rd.du_bytes(d.root)
    assert report.orphans == ()
    assert report.problems == ()
    assert t.other == 0
    for image in report.images:
        dirs = [d.root / "fuse-overlayfs" / layer.cache_id for layer in image.layers]
        links = [d.root / "fuse-overlayfs/l" / (p / "link").read_text().strip() for p in dirs]
        assert image.disk == rd.du_bytes(*dirs, *links)  # each layer's dir and its l/ short link
    infos = _image_infos(d.root, report)
    for image in report.images:
        info = infos[image.id]
        dirs = [d.root / "fuse-overlayfs" / layer.cache_id for layer in image.layers]
        links = [d.root / "fuse-overlayfs/l" / (p / "link").read_text().strip() for p in dirs]
        assert [x.disk for x in info.layers] == [
            rd.du_bytes(p, lk) for p, lk in zip(dirs, links, strict=True)
        ]
        assert [(x.disk, x.files) for x in info.layers] == [(x.disk, x.files) for x in image.layers]
        assert (info.disk, info.unique_disk, info.size) == (image.disk, image.unique_disk, image.size)
        assert info.problems == ()
    # fuse-overlayfs may store the deletion as a `.wh.gone.bin` file rather than a 0:0 device:
    # either way the file is hidden, and the marker is no path of its own.
    (whited,) = [i for i in infos.values() if WHITED in i.tags]
    assert (whited.wasted.size, [(o.path, o.how) for o in whited.wasted.offenders]) == (
        GONE,
        [("/gone.bin", "deleted")],
    )
    rm_layer = _image_infos(d.root, report, top=5)[whited.id].layers[-1]
    assert rm_layer.files == 1 and not any(".wh." in t.path for t in rm_layer.top)


def _ctrd_container(root: Path, cid: str, volume: str) -> None:
    config = {
        "ID": cid,
        "Name": "/app",
        "Driver": "overlayfs",
        "Image": "sha256:" + "1" * 64,
        "State": {"Running": True, "StartedAt": "2026-01-01T00:00:01Z"},
        "MountPoints": {"/v": {"Type": "volume", "Name": volume, "Driver": "local"}},
    }
    _touch(root / "containers" / cid / "config.v2.json", json.dumps(config).encode())
    _touch(root / "containers" / cid / f"{cid}-json.log", b"log line\n" * 100)
    _touch(root / "volumes" / volume / "_data" / "data.bin", b"v" * 5000)


def test_containerd_store_without_its_root_claims_no_orphan(tmp_path: Path) -> None:
    """A Docker root whose containers name a snapshotter, with no containerd root anywhere:
    containers listed from their configs with rw_size null, a problem naming the option, exit 0."""
    from typer.testing import CliRunner

    from dockerdu.cli import app

    root = tmp_path / "docker"
    cid = "c" * 64
    _ctrd_container(root, cid, "data")
    _touch(root / "volumes" / "spare" / "_data" / "x", b"s" * 100)
    result = CliRunner().invoke(
        app, ["report", "--root", str(root), "-f", "json", "-q", "--no-cache"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["store"], doc["driver"], doc["containerd_root"]) == ("containerd", "overlayfs", None)
    assert doc["orphans"] == []
    assert [(c["id"], c["rw_size"]) for c in doc["containers"]] == [(cid, None)]
    assert f"containers:{cid}" in doc["incomplete"]
    volumes = {v["name"]: v["containers"] for v in doc["volumes"]}
    assert volumes == {"data": ["app"], "spare": []}
    assert doc["reclaimable"]["volumes"]["size"] == 100
    [problem] = [p for p in doc["problems"] if p["kind"] == "containerd_root_missing"]
    assert "--containerd-root" in problem["reason"]
    # A --containerd-root that holds no containerd metadata says so, and claims nothing either.
    empty = tmp_path / "empty"
    empty.mkdir()
    given = build_report(Location(root, "--root", None), Options(jobs=1, containerd_root=empty))
    assert given.orphans == () and given.containerd_root == str(empty)
    assert [p.path for p in given.problems if p.kind == "containerd_root_missing"] == [str(empty)]


def test_feature_flag_means_containerd_store(tmp_path: Path) -> None:
    """daemon.json enabling containerd-snapshotter, before any container: the containerd store."""
    from dockerdu.locate import containerd_in_use

    root = tmp_path / "docker"
    _touch(root / "volumes" / "metadata.db")
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text(json.dumps({"features": {"containerd-snapshotter": True}}))
    store = detect_store(root)
    assert store.store == "overlay2"
    assert containerd_in_use(root, store, daemon_json)
    daemon_json.write_text(json.dumps({"features": {"containerd-snapshotter": False}}))
    assert not containerd_in_use(root, store, daemon_json)
    assert not containerd_in_use(root, store, None)
    _container(root, "d" * 64, "overlayfs")
    assert containerd_in_use(root, store, None)


def test_containerd_root_beside_and_from_config_file(tmp_path: Path) -> None:
    """`containerd` beside the Docker root is found when it holds meta.db; the audit's config names one."""
    from dockerdu.audit import settings
    from dockerdu.ctrdroot import find_containerd_root

    root = tmp_path / "var/lib/docker"
    _ctrd_container(root, "e" * 64, "data")
    beside = tmp_path / "var/lib/containerd"
    beside.mkdir(parents=True)
    assert find_containerd_root(root, None, "", None).path is None
    _touch(beside / "io.containerd.metadata.v1.bolt/meta.db")
    found = find_containerd_root(root, None, "", None)
    assert (found.path, found.source) == (beside, "beside the Docker root")
    config = tmp_path / "dockerdu.toml"
    config.write_text(f'[audit]\ncontainerd-root = "{beside}"\n')
    s = settings(config, {})
    assert (s.containerd_root, s.containerd_root_source) == (beside, f"containerd-root in {config}")
    s = settings(config, {"containerd-root": tmp_path})
    assert (s.containerd_root, s.containerd_root_source) == (tmp_path, "--containerd-root")
