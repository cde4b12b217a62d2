"""Trees a container can make to hurt a walker: very deep, very wide, or changing under it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockerdu.index import METADATA
from dockerdu.locate import Location
from dockerdu.measure import Task, _Context, _walk
from dockerdu.report import Report
from dockerdu.scan import Options, index_root
from tests.conftest import du, scan
from tests.rootbuilder import RootBuilder

DEPTH = 10_000


def _container_rw(builder: RootBuilder) -> tuple[Path, str]:
    image = builder.add_image([{"bin/sh": b"#" * 100}], ["deep:1"])
    top = builder.image_chain([{"bin/sh": b"#" * 100}])[-1]
    c = builder.add_container(image, top, "deep", {})
    return builder.root / "overlay2" / c.mount_id / "diff", c.id


def _make_deep(top: Path, depth: int, name: str) -> None:
    """`depth` nested dirs called `name` below `top`, one file at the bottom (no path is needed)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        bottom = os.open("bottom", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(bottom, b"b" * 5000)
        os.close(bottom)
    finally:
        os.close(fd)


@pytest.fixture
def removed_after(tmp_path: Path) -> Iterator[Path]:
    # Python's rmtree recurses once per level; rm does not.
    yield tmp_path
    subprocess.run(["rm", "-rf", "--", str(tmp_path / "docker")], check=False)


def _container(report: Report, cid: str) -> tuple[int | None, int]:
    (c,) = [c for c in report.containers if c.id == cid]
    return c.rw_size, c.rw_disk


@pytest.mark.parametrize(
    ("name", "depth"), [("d", DEPTH), ("n" * 255, 2_000)], ids=["10000-levels", "long-names"]
)
def test_deep_tree_is_walked_to_the_bottom(
    builder: RootBuilder, removed_after: Path, name: str, depth: int
) -> None:
    """Far below PATH_MAX and the fd limit: dirs are opened relative to an open ancestor."""
    rw, cid = _container_rw(builder)
    _make_deep(rw, depth, name)
    report = scan(builder.root)
    assert report.problems == ()
    size_rw, disk = _container(report, cid)
    assert size_rw == 5000  # Docker's SizeRw: the one file at the bottom
    assert disk >= depth * 4096
    assert report.totals.root_disk == du(builder.root)


@pytest.mark.slow
def test_wide_dir_streams(builder: RootBuilder, tmp_path: Path) -> None:
    """A million entries in one dir: counted exactly, in bounded memory (the listing is streamed)."""
    rw, cid = _container_rw(builder)
    wide = rw / "wide"
    wide.mkdir()
    fd = os.open(wide, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(int(os.environ.get("DOCKERDU_WIDE", "1000000"))):
            os.mknod(f"e{i}", 0o644 | 0o100000, dir_fd=fd)
    finally:
        os.close(fd)
    out = tmp_path / "report.json"
    # A fresh parent, so that its children's peak RSS is this run's alone.
    cmd = [sys.executable, "-m", "dockerdu", "report", "--root", str(builder.root), "--format", "json",
           "--jobs", "1", "--no-cache", "--output", str(out)]  # fmt: skip
    wrapper = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    peak_kib = int(
        subprocess.run(
            [sys.executable, "-c", wrapper, *cmd], check=True, capture_output=True, text=True
        ).stdout
    )
    assert peak_kib < 64 * 1024, f"peak RSS {peak_kib} KiB"
    report = scan(builder.root)
    assert report.totals.root_disk == du(builder.root)
    dirs = [rw.parent, rw.parent.with_name(rw.parent.name + "-init")]
    links = [d.parent / "l" / (d / "link").read_text() for d in dirs]
    assert _container(report, cid)[1] == du(*dirs, *links)


def test_dir_swapped_for_a_symlink_is_not_followed(builder: RootBuilder, tmp_path: Path) -> None:
    """A layer's diff/ replaced by a link to a big tree outside, between its listing and its walk."""
    rw, _ = _container_rw(builder)
    (rw / "f").write_bytes(b"x" * 10_000)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s" * 1_000_000)
    root = str(builder.root)
    index = index_root(Location(builder.root, "--root", None), Options(), time.time())
    swapped = []

    def swap_when_listed(task: Task) -> bool:
        if task.path == str(rw):
            (rw / "f").unlink()
            rw.rmdir()
            rw.symlink_to(outside)
            swapped.append(task.rel)
        return False

    task = Task(root, "", METADATA, None, dict(index.marks), index.parents())
    res = _walk(task, _Context(root, os.stat(root).st_dev, frozenset()), swap_when_listed)
    assert swapped
    assert res.problems == []
    charged = sum(t.disk for t in res.tallies.values()) + sum(b for b, _ in res.links.values())
    assert charged < 1_000_000  # nothing outside the root was reached
    # du, after the swap, sees the link where the walk saw (and charged) diff/ itself.
    assert charged == du(builder.root) - rw.lstat().st_blocks * 512 + 4096
