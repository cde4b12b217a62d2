"""The parallel walk, the layer cache and quick mode give the figures of a plain walk."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from dockerdu import measure
from dockerdu.locate import Location
from dockerdu.report import Report
from dockerdu.scan import Options, build_report
from tests.conftest import du
from tests.rootbuilder import RootBuilder


def _root(builder: RootBuilder, images: int = 10) -> RootBuilder:
    base = {"bin/busybox": b"x" * 50_000}
    for i in range(images):
        layer = {f"app{i}/f{j}": bytes([65 + j]) * (1000 * j + 1) for j in range(20)}
        image = builder.add_image([base, layer], [f"app:{i}"])
        if i % 3 == 0:
            top = builder.image_chain([base, layer])[-1]
            c = builder.add_container(image, top, f"c{i}", {"rw": b"r" * 3000})
            rw = builder.root / "overlay2" / c.mount_id / "diff"
            os.link(rw / "rw", rw / "rw-link")
    # A hard link between two layer dirs: charged once, to whichever dir the merge meets first.
    dirs = sorted(layer.cache_id for layer in builder.layers.values())
    os.link(
        builder.root / "overlay2" / dirs[1] / "diff" / next(iter(_files(builder, dirs[1]))),
        builder.root / "overlay2" / dirs[2] / "diff" / "cross-link",
    )
    builder.add_volume("v", {f"f{i}": b"v" * 5000 for i in range(10)})
    return builder


def _files(builder: RootBuilder, cache_id: str) -> list[str]:
    diff = builder.root / "overlay2" / cache_id / "diff"
    return [str(p.relative_to(diff)) for p in diff.rglob("*") if p.is_file()]


def _figures(r: Report) -> dict[str, object]:
    doc = dataclasses.asdict(r)
    for volatile in ("generated_at", "filesystem", "notes"):
        doc.pop(volatile)
    return doc


def _report(root: Path, **options: object) -> Report:
    return build_report(Location(root, "--root", None), Options(**options))  # type: ignore[arg-type]


def test_parallel_walk_equals_serial(builder: RootBuilder) -> None:
    root = _root(builder).root
    serial = _report(root, jobs=1)
    parallel = _report(root, jobs=2)
    assert _figures(serial) == _figures(parallel)
    assert serial.totals.root_disk == du(root)


@pytest.mark.usefixtures("settled")
def test_threads_walk_a_cached_or_quick_run_as_one_thread_does(
    builder: RootBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What such a run still walks (writable layers, volumes) is walked by threads, the C
    scan running without the GIL; a hard link between two of them is charged once, to the
    first in the fixed merge order, whichever thread met it first."""
    root = _root(builder).root
    rw = sorted(
        p for p in (root / "overlay2").glob("*/diff/rw") if not p.parent.parent.name.endswith("-init")
    )
    os.link(rw[0], rw[1].parent / "linked-from-another-container")
    threaded: list[int] = []
    walk_threads = measure._walk_threads

    def spy(tasks: list[measure.Task], ctx: object, jobs: int) -> list[measure.TaskResult]:
        threaded.append(len(tasks))
        return walk_threads(tasks, ctx, jobs)  # type: ignore[arg-type]

    monkeypatch.setattr(measure, "_walk_threads", spy)
    cache_dir = tmp_path / "cache"
    _report(root, cache_dir=cache_dir, jobs=1)  # fills the cache
    for options in ({"quick": True}, {"cache_dir": cache_dir}):
        one = _report(root, jobs=1, **options)
        assert not threaded
        three = _report(root, jobs=3, **options)
        assert threaded and threaded.pop() >= 5  # 4 writable layers and a volume, at least
        assert _figures(one) == _figures(three)
    assert one.totals.root_disk == du(root)


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Layers count as settled as soon as they were written (no writeback window)."""
    monkeypatch.setenv("DOCKERDU_SETTLE_SECONDS", "0")


@pytest.mark.usefixtures("settled")
def test_cache_gives_identical_figures_and_is_used(builder: RootBuilder, tmp_path: Path) -> None:
    root = _root(builder).root
    cache_dir = tmp_path / "cache"
    cold = _report(root, cache_dir=cache_dir)
    (cache_file,) = cache_dir.iterdir()
    warm = _report(root, cache_dir=cache_dir)
    assert _figures(cold) == _figures(warm)
    doc = json.loads(cache_file.read_text())
    assert len(doc["layers"]) == len(builder.layers)
    # Prove the second run used it: a doctored entry shows through.
    entry = next(iter(doc["layers"].values()))
    entry["disk"] += 4096
    cache_file.write_text(json.dumps(doc))
    assert _report(root, cache_dir=cache_dir).totals.images == cold.totals.images + 4096  # type: ignore[operator]


@pytest.mark.usefixtures("settled")
def test_cache_never_serves_a_changed_layer(builder: RootBuilder, tmp_path: Path) -> None:
    root = _root(builder).root
    cache_dir = tmp_path / "cache"
    _report(root, cache_dir=cache_dir)
    layer = next(iter(builder.layers.values()))
    diff = root / "overlay2" / layer.cache_id / "diff"
    (diff / "added").write_bytes(b"n" * 20_000)
    changed = _report(root, cache_dir=cache_dir)
    assert changed.totals.root_disk == du(root)
    assert _figures(changed) == _figures(_report(root))
    # Replaced whole (same name, new dir): walked again.
    shutil.copytree(root / "overlay2" / layer.cache_id, tmp_path / "copy", symlinks=True)
    shutil.rmtree(root / "overlay2" / layer.cache_id)
    (tmp_path / "copy" / "diff" / "more").write_bytes(b"m" * 9000)
    shutil.move(tmp_path / "copy", root / "overlay2" / layer.cache_id)
    assert _figures(_report(root, cache_dir=cache_dir)) == _figures(_report(root))


@pytest.mark.usefixtures("settled")
def test_corrupt_or_foreign_cache_is_ignored(builder: RootBuilder, tmp_path: Path) -> None:
    root = _root(builder).root
    cache_dir = tmp_path / "cache"
    truth = _figures(_report(root))
    _report(root, cache_dir=cache_dir)
    (cache_file,) = cache_dir.iterdir()
    doc = json.loads(cache_file.read_text())
    for entry in doc["layers"].values():
        entry["disk"] = 1
    for damage in (
        "{not json",
        json.dumps({**doc, "root": "/elsewhere"}),
        json.dumps({**doc, "schema": 99}),
        json.dumps({**doc, "root_id": [0, 0]}),
    ):
        cache_file.write_text(damage)
        assert _figures(_report(root, cache_dir=cache_dir)) == truth


def test_cache_takes_a_layer_only_once_it_has_settled(
    builder: RootBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A layer written just before a cached run is walked afresh until it settles.

    Until writeback, a file system may allocate blocks to a file without changing
    any ctime or mtime (ext4's extent blocks): cached then, a layer would stay short
    of du. Here a file deep in a layer grows in place, which changes neither the
    layer dir nor its diff/ (what proves a cache entry current): only the settling
    rule keeps the second report right.
    """
    root = _root(builder).root
    cache_dir = tmp_path / "cache"
    truth = _figures(_report(root))
    monkeypatch.setenv("DOCKERDU_SETTLE_SECONDS", "3600")  # every layer changed within the window
    assert _figures(_report(root, cache_dir=cache_dir)) == truth
    assert not list(cache_dir.glob("layers-*.json")), "a layer was cached before it settled"
    layer = next(iter(builder.layers.values()))
    grown = root / "overlay2" / layer.cache_id / "diff" / "bin" / "busybox"
    with open(grown, "ab") as f:
        f.write(b"w" * 40_000)
    again = _report(root, cache_dir=cache_dir)
    assert again.totals.root_disk == du(root)
    assert _figures(again) == _figures(_report(root))
    # Settled: cached, each entry with its layer's newest ctime.
    monkeypatch.setenv("DOCKERDU_SETTLE_SECONDS", "0")
    _report(root, cache_dir=cache_dir)
    (cache_file,) = cache_dir.iterdir()
    doc = json.loads(cache_file.read_text())
    assert len(doc["layers"]) == len(builder.layers)
    layer_dir = root / "overlay2" / layer.cache_id
    newest = max(os.lstat(p).st_ctime_ns for p in [layer_dir, *layer_dir.rglob("*")])
    assert doc["layers"][layer.cache_id]["newest"] == newest
    # An entry whose layer changed within the window (of this run) is neither served nor kept.
    doc["layers"][layer.cache_id]["disk"] += 4096
    cache_file.write_text(json.dumps(doc))
    monkeypatch.setenv("DOCKERDU_SETTLE_SECONDS", "3600")
    assert _figures(_report(root, cache_dir=cache_dir)) == _figures(_report(root))
    assert json.loads(cache_file.read_text())["layers"] == {}


def test_quick_mode_leaves_image_disk_unknown(builder: RootBuilder) -> None:
    root = _root(builder).root
    full = _report(root)
    quick = _report(root, quick=True)
    assert sorted((i.id, i.size, i.shared_size) for i in quick.images) == sorted(
        (i.id, i.size, i.shared_size) for i in full.images
    )
    assert all(i.disk is None for i in quick.images)
    assert quick.totals.images is None and quick.totals.root_disk is None
    assert sorted((c.id, c.rw_size) for c in quick.containers) == sorted(
        (c.id, c.rw_size) for c in full.containers
    )
    assert quick.totals.volumes == full.totals.volumes


def test_walk_core_in_c_is_built_and_agrees_with_python(
    builder: RootBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dockerdu/_walkdir.c lists and stats most dirs; the Python loop must give the same figures."""
    built = measure._scan_dir is not measure.scan_dir_py
    assert built, "dockerdu._walkdir was not built: is a C compiler installed?"
    root = _root(builder).root
    (root / "volumes" / "v" / "_data" / "sub" / "deeper").mkdir(parents=True)
    os.link(root / "volumes" / "v" / "_data" / "f1", root / "volumes" / "v" / "_data" / "sub" / "f1-link")
    in_c = _report(root, jobs=1)
    monkeypatch.setattr(measure, "_scan_dir", measure.scan_dir_py)
    in_python = _report(root, jobs=1)
    assert _figures(in_c) == _figures(in_python)
    assert in_c.totals.root_disk == du(root)


def test_scan_dir_in_c_equals_python(tmp_path: Path) -> None:
    """The two scans of one dir agree entry for entry: sums, subdirs, multi-link inodes."""
    d = tmp_path / "d"
    d.mkdir()
    for i in range(50):
        (d / f"f{i}").write_bytes(b"x" * (i * 300))
    (d / "sub").mkdir()
    (d / "sub2").mkdir()
    os.link(d / "f7", d / "f7-link")
    os.symlink("/", d / "to-root")
    os.symlink("missing", d / "dangling")
    os.mkfifo(d / "fifo")
    (d / "nl\nname\x1b[31m").write_bytes(b"n")
    (d / os.fsdecode(b"bad-\xff")).write_bytes(b"b")
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        dev = os.fstat(fd).st_dev
        from dockerdu import _walkdir

        in_c = _walkdir.scan(fd, dev)
        in_python = measure.scan_dir_py(fd, dev)
        other_dev = _walkdir.scan(fd, dev + 1)
    finally:
        os.close(fd)
    assert in_c == in_python
    blocks, inodes, files, size, entries, dirs, multi, errors, newest = in_c
    assert newest == max(os.lstat(d / n).st_ctime_ns for n in os.listdir(d))
    assert (inodes, files, entries, errors) == (56, 54, 58, [])
    assert blocks * 512 == sum(os.lstat(d / n).st_blocks * 512 for n, _ in dirs) + sum(
        os.lstat(d / n).st_blocks * 512 for n in os.listdir(d) if n not in ("f7", "f7-link", "sub", "sub2")
    )
    assert size == sum(i * 300 for i in range(50) if i != 7) + 1 + 1 + len("missing") + 1
    assert sorted(n for n, _ in dirs) == ["sub", "sub2"]
    assert [m[2] for m in multi] == [2100, 2100]
    assert other_dev[4] == 0 and other_dev[5] == []  # entries of another device: none counted


def _walked(scan: Callable[..., measure.ScanResult], top: Path, depth: int) -> tuple[object, ...]:
    """Sums of `scan` over the tree at `top`, walking whatever dirs it hands back."""
    blocks = inodes = files = size = entries = newest = calls = 0
    multi: list[tuple[int, int, int]] = []
    errors: list[tuple[str, int]] = []
    pending = [top]
    while pending:
        path = pending.pop()
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            b, i, f, s, e, dirs, m, errs, n = scan(fd, os.fstat(fd).st_dev, depth)
        finally:
            os.close(fd)
        calls += 1
        blocks, inodes, files, size, entries = blocks + b, inodes + i, files + f, size + s, entries + e
        newest = max(newest, n)
        multi += m
        errors += errs
        pending += [path / name for name, _ in dirs]
    return blocks, inodes, files, size, entries, newest, sorted(multi), errors, calls


def test_scan_in_c_walks_the_subtree_as_python_does(tmp_path: Path) -> None:
    """One C call walks a subtree, handing back the dirs too deep or too far for it."""
    from dockerdu import _walkdir

    top = tmp_path / "t"
    for i in range(6):
        sub = top / f"a{i}" / "b" / "c"
        sub.mkdir(parents=True)
        (sub / "f").write_bytes(b"f" * 5000 * i)
        (top / f"a{i}" / "g").write_bytes(b"g" * 100)
    os.link(top / "a1" / "g", top / "a2" / "b" / "g-link")
    long = top / "long"
    for _ in range(6):  # paths past 1024 bytes are handed back
        long = long / ("n" * 250)
    long.mkdir(parents=True)
    (long / "bottom").write_bytes(b"b" * 3000)
    in_c = _walked(_walkdir.scan, top, 64)
    in_python = _walked(measure.scan_dir_py, top, 0)
    assert in_c[:-1] == in_python[:-1]
    assert in_c[-1] == 2  # the top, and the long path's dir past 1024 bytes
    assert _walked(_walkdir.scan, top, 1)[:-1] == in_python[:-1]
