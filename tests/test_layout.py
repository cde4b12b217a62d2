"""The layout value and the drivers table: each root's marks, each driver's facts in one row."""

from __future__ import annotations

from pathlib import Path

from dockerdu.index import METADATA, Mark, Owner
from dockerdu.layout import containerd_layout, graphdriver_layout
from dockerdu.model import Category
from dockerdu.roots import measure_roots
from dockerdu.stores.common import KNOWN_TOP
from dockerdu.stores.graphdriver.drivers import DRIVERS, OTHER_DRIVERS, driver


def test_each_root_gets_the_marks_under_it_relative_to_it(tmp_path: Path) -> None:
    separate = str(tmp_path / "containerd")
    layout = containerd_layout(str(tmp_path / "docker"), "overlayfs", "moby", separate, separate)
    blob = f"{separate}/io.containerd.content.v1.content/blobs/sha256/ab"
    marks = {
        "containers/c": Mark(Owner(Category.containers, "c"), None),
        blob: Mark(Owner(Category.image_content, "content store"), None),
    }
    docker, ctrd = layout.roots
    assert layout.marks_of(docker, marks) == {"containers/c": marks["containers/c"]}
    assert layout.marks_of(ctrd, marks) == {"io.containerd.content.v1.content/blobs/sha256/ab": marks[blob]}
    assert layout.root_of(blob) is ctrd and layout.root_of("containers/c") is docker
    assert blob.startswith(layout.blobs)
    assert ctrd.split == {"io.containerd.snapshotter.v1.overlayfs/snapshots"}
    assert layout.layer_dir("7") == f"{separate}/io.containerd.snapshotter.v1.overlayfs/snapshots/7"


def test_managed_containerd_store_is_one_root(tmp_path: Path) -> None:
    layout = containerd_layout(str(tmp_path), "overlayfs", "moby", "containerd/daemon", None)
    assert [r.role for r in layout.roots] == ["docker"]
    assert layout.layer_dir("3") == "containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots/3"
    assert layout.layer_content is None  # snapshots are not served from the layer cache


def test_graphdriver_layout_is_one_root() -> None:
    layout = graphdriver_layout("/var/lib/docker", "vfs", "vfs/dir", None)
    assert layout.docker.split == {"vfs/dir", "volumes"} and layout.layer_dir("ab") == "vfs/dir/ab"
    assert layout.store == layout.driver == "vfs" and layout.layer_word == "cache ID"


def test_drivers_table() -> None:
    assert {"overlay2", "fuse-overlayfs", "vfs", "overlay", "aufs"} <= DRIVERS.keys()
    assert {*DRIVERS, *OTHER_DRIVERS} <= KNOWN_TOP
    assert driver("vfs").layer_root == "vfs/dir" and driver("aufs").layer_root == "aufs/diff"
    assert [d for d, row in DRIVERS.items() if row.links] == ["overlay2", "fuse-overlayfs"]
    assert {d for d, row in DRIVERS.items() if row.naive_diff} == {"vfs", "fuse-overlayfs", "overlay"}
    # A driver with no row is read as overlay2 lays out its dir.
    assert driver("btrfs").layer_root == "btrfs" and driver("btrfs").content == "diff"


def test_two_roots_are_walked_each_on_its_own(tmp_path: Path) -> None:
    """measure_roots walks every root of the layout and adds what each one holds."""
    from dockerdu.index import Index
    from dockerdu.readers.buildkit import BuildCacheScan
    from dockerdu.readers.volumes import VolumesScan

    docker, ctrd = tmp_path / "docker", tmp_path / "containerd"
    (docker / "containers" / "c").mkdir(parents=True)
    (docker / "containers" / "c" / "log").write_bytes(b"x" * 10_000)
    blobs = ctrd / "io.containerd.content.v1.content" / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (blobs / "ab").write_bytes(b"y" * 20_000)
    two = containerd_layout(str(docker), "overlayfs", "moby", str(ctrd), str(ctrd))
    index = Index(
        layout=two,
        images={},
        layers={},
        layer_owner={},
        containers={},
        volume_users={},
        volumes=VolumesScan({}, (), True),
        buildkit=BuildCacheScan((), frozenset(), (), True),
        shared_rule="",
    )
    index.mark("containers/c", Owner(Category.containers, "c"))
    content = Owner(Category.image_content, "content store")
    index.mark(f"{ctrd}/io.containerd.content.v1.content/blobs/sha256/ab", content)
    m, reports = measure_roots(index, None, jobs=1, quick=False)
    assert [(r.path, r.role) for r in reports] == [(str(docker), "docker"), (str(ctrd), "containerd")]
    assert m.root_disk == sum(r.disk or 0 for r in reports)
    assert m.tallies[Owner(Category.containers, "c")].disk >= 10_000
    assert m.tallies[content].disk >= 20_000
    assert METADATA in m.tallies  # each root's own dirs
