"""`dockerdu image` on trees a container can make to hurt a walker: very deep, or changing under it.

The merged walk opens dirs as the report's walk does (tests/test_limits.py): relative
to an open ancestor, never through a symlink, only while it is the inode the listing
showed. Paths here exceed PATH_MAX, so the trees are built with fd-relative calls.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockerdu.imageinfo import LayerPlace, walk_layers
from tests.conftest import du, scan
from tests.rootbuilder import RootBuilder
from tests.test_image import BASE, IMPORTED, _h, add_image, analyze, diff, link_of

DEPTH = 3_000
BOTTOM = 5_000


def _deep(top: Path, depth: int, leaf: Callable[[int], None]) -> None:
    """`depth` nested dirs `d` below `top` (made or entered), then `leaf(fd of the deepest)`."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            try:
                os.mkdir("d", dir_fd=fd)
            except FileExistsError:
                pass
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf(fd)
    finally:
        os.close(fd)


def _bottom_file(fd: int) -> None:
    f = os.open("bottom", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(f, b"b" * BOTTOM)
    os.close(f)


def _bottom_whiteout(fd: int) -> None:
    os.mknod("bottom", stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=fd)


@pytest.fixture
def removed_after(tmp_path: Path) -> Iterator[Path]:
    # Python's rmtree recurses once per level; rm does not.
    yield tmp_path
    subprocess.run(["rm", "-rf", "--", str(tmp_path / "docker")], check=False)


def test_deep_layers_are_merged_to_the_bottom(builder: RootBuilder, removed_after: Path) -> None:
    """A file 3,000 levels down in one layer, deleted by a whiteout as deep in the next."""
    files = [BASE, {"marker": b"m"}]
    layers = builder.add_layers(files)
    _deep(diff(builder, layers[0]), DEPTH, _bottom_file)
    _deep(diff(builder, layers[1]), DEPTH, _bottom_whiteout)
    add_image(builder, files, ["deep:1"], [IMPORTED, _h("/bin/sh -c rm -r /d")])
    (info,) = analyze(builder.root, "deep:1", top=3)
    assert info.problems == ()
    assert [layer.files for layer in info.layers] == [len(BASE) + 1, 2]  # the whiteout is a file
    for layer, made in zip(info.layers, layers, strict=True):
        assert layer.disk == du(builder.root / "overlay2" / made.cache_id, link_of(builder, made))
    w = info.wasted
    assert (w.size, w.files) == (BOTTOM, 1)
    (o,) = w.offenders
    assert (o.path, o.written_by, o.hidden_by, o.how) == ("/d" * DEPTH + "/bottom", 0, 1, "deleted")
    assert w.stored == sum(len(v) for v in BASE.values()) + BOTTOM + 1
    # --top descends the chain of /d dirs (each holds all of its parent's bytes) as far as its
    # 4N + 16 candidates reach; a /d dir of the chain holding the bottom file is listed.
    chain = [t for t in info.layers[0].top if t.kind == "dir" and t.size == BOTTOM]
    assert chain and all(set(t.path.split("/")[1:]) == {"d"} for t in chain)
    # The report's figures for the same layers.
    (image,) = [i for i in scan(builder.root).images if i.id == info.id]
    assert [(x.disk, x.files) for x in image.layers] == [(x.disk, x.files) for x in info.layers]
    assert (image.disk, image.unique_disk) == (info.disk, info.unique_disk)


def test_a_dir_swapped_for_a_symlink_is_not_followed(builder: RootBuilder, tmp_path: Path) -> None:
    """An upper layer's /a replaced by a link to a big tree outside, between its listing and its walk."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s" * 1_000_000)
    layers = builder.add_layers([{**BASE, "a/x.bin": b"x" * 1000}, {"a/y.bin": b"y" * 10}])
    upper = diff(builder, layers[1]) / "a"
    swapped: list[str] = []

    def swap_when_listed(rel: str) -> None:
        if rel == "/a" and not swapped:
            shutil.rmtree(upper)
            upper.symlink_to(outside)
            swapped.append(rel)

    places = [
        LayerPlace(str(builder.root / "overlay2" / layer.cache_id), (str(link_of(builder, layer)),))
        for layer in layers
    ]
    walks, waste, problems = walk_layers(places, top=20, before_open=swap_when_listed)
    assert swapped
    assert problems == []
    paths = {t.path: t for w in walks if w is not None for t in w.top}
    assert not any("secret" in p for p in paths)  # nothing outside the root was reached
    assert paths["/a/x.bin"].size == 1000  # the lower layer's /a is walked as before
    assert "/a/y.bin" not in paths
    assert waste.complete and waste.size == 0
    assert all(t.size < 1_000_000 for t in paths.values())
