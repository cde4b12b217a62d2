"""The parallel walk, the layer cache and quick mode give the figures of a plain walk."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
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
    assert measure._scan_dir is not None, "dockerdu._walkdir was not built: is a C compiler installed?"
    root = _root(builder).root
    (root / "volumes" / "v" / "_data" / "sub" / "deeper").mkdir(parents=True)
    os.link(root / "volumes" / "v" / "_data" / "f1", root / "volumes" / "v" / "_data" / "sub" / "f1-link")
    in_c = _report(root, jobs=1)
    monkeypatch.setattr(measure, "_scan_dir", None)
    in_python = _report(root, jobs=1)
    assert _figures(in_c) == _figures(in_python)
    assert in_c.totals.root_disk == du(root)
