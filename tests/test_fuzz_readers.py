"""Property tests: whatever bytes or JSON the metadata files hold, the readers return records or Problems.

Each example writes a tiny root (one image, layer, mount, container, volume, overlay2
dir) whose files hold what hypothesis chose, runs every reader and then the whole
report on it. Nothing may raise; every problem must name a path under the root.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockerdu.locate import Location
from dockerdu.model import ProblemKind
from dockerdu.readers.containers import read_containers
from dockerdu.readers.imagedb import read_imagedb, read_references
from dockerdu.readers.layerdb import read_layerdb
from dockerdu.readers.layerdirs import read_layer_dirs
from dockerdu.readers.volumes import read_volumes
from dockerdu.scan import Options, build_report

HEX = "a" * 64
CID = "c" * 64
DIFF = "sha256:" + "d" * 64
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Plausible text (IDs, digests, traversal) or anything at all.
id_text = st.sampled_from(
    [HEX, "sha256:" + HEX, DIFF, "", "..", "../../etc", "sha256:../x", "/", "1_2", "-5", "１２", "9" * 30,
     "l/" + "A" * 26, "sha256:" + "Z" * 64, "abcdefghijklmnopqrstuvwxy"]
) | st.text(max_size=40)  # fmt: skip
file_bytes = st.binary(max_size=200) | id_text.map(lambda t: t.encode("utf-8", "surrogatepass"))
names = st.text(
    st.characters(exclude_characters="/\0", exclude_categories=["Cs"]), min_size=1, max_size=30
).filter(lambda n: n not in (".", ".."))


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")


def _put(path: Path, data: bytes | None) -> None:
    """Write `data` at `path` (None: leave it absent)."""
    if data is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


_maybe = st.none() | file_bytes
_json_or_bytes = json_values.map(_json_bytes) | file_bytes
_config = st.dictionaries(
    st.sampled_from(["ID", "Name", "Image", "State", "MountPoints", "Config", "Driver"]),
    json_values | st.just(CID),
    max_size=7,
).map(_json_bytes)
_image = st.dictionaries(
    st.sampled_from(["rootfs", "created", "os", "history"]),
    json_values | st.just({"type": "layers", "diff_ids": [DIFF]}) | st.just({"diff_ids": [DIFF, 5]}),
    max_size=4,
).map(_json_bytes)


def _check(problems: Any) -> None:
    for p in problems:
        assert isinstance(p.kind, ProblemKind), p
        assert not p.path.startswith("/"), p
        assert "\n" not in p.reason, p


@FUZZ
@given(
    config=_image | _json_or_bytes,
    parent=_maybe,
    last_updated=_maybe,
    repositories=st.none() | _json_or_bytes | st.dictionaries(
        st.just("Repositories"),
        st.dictionaries(names, st.dictionaries(names, json_values | st.just("sha256:" + HEX), max_size=3)),
    ).map(_json_bytes),
    stray=st.none() | names,
)  # fmt: skip
def test_imagedb_and_repositories(
    config: bytes, parent: bytes | None, last_updated: bytes | None, repositories: bytes | None,
    stray: str | None,
) -> None:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "image" / "overlay2"
        image = hashlib.sha256(config).hexdigest()
        _put(store / "imagedb/content/sha256" / image, config)
        _put(store / "imagedb/content/sha256" / HEX, config)  # and under a name it does not hash to
        _put(store / "imagedb/metadata/sha256" / image / "parent", parent)
        _put(store / "imagedb/metadata/sha256" / image / "lastUpdated", last_updated)
        _put(store / "repositories.json", repositories)
        if stray is not None:
            _put(store / "imagedb/content/sha256" / stray, b"{}")
        scan = read_imagedb(store, "image/overlay2")
        _check(scan.problems)
        assert ("sha256:" + HEX) not in scan.images
        refs, problems = read_references(store, "image/overlay2")
        _check(problems)
        assert refs.readable or problems


@FUZZ
@given(
    diff=_maybe, size=_maybe, cache_id=_maybe, parent=_maybe,
    mount_id=_maybe, init_id=_maybe, mount_parent=_maybe, stray=st.none() | names,
)  # fmt: skip
def test_layerdb(
    diff: bytes | None, size: bytes | None, cache_id: bytes | None, parent: bytes | None,
    mount_id: bytes | None, init_id: bytes | None, mount_parent: bytes | None, stray: str | None,
) -> None:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "image" / "overlay2"
        layer = store / "layerdb/sha256" / HEX
        layer.mkdir(parents=True)
        for name, data in (("diff", diff), ("size", size), ("cache-id", cache_id), ("parent", parent)):
            _put(layer / name, data)
        mount = store / "layerdb/mounts" / CID
        mount.mkdir(parents=True)
        for name, data in (("mount-id", mount_id), ("init-id", init_id), ("parent", mount_parent)):
            _put(mount / name, data)
        if stray is not None:
            (store / "layerdb/sha256" / stray).mkdir(exist_ok=True)
        scan = read_layerdb(store, "image/overlay2")
        _check(scan.problems)
        for record in scan.layers.values():
            assert record.size is None or record.size >= 0
        assert ("sha256:" + HEX in scan.layers) != ("sha256:" + HEX in scan.unreadable_layers)


@FUZZ
@given(config=_config | _json_or_bytes, hostconfig=st.none() | _json_or_bytes, stray=st.none() | names)
def test_containers(config: bytes, hostconfig: bytes | None, stray: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "containers"
        _put(base / CID / "config.v2.json", config)
        _put(base / CID / "hostconfig.json", hostconfig)
        if stray is not None:
            (base / stray).mkdir(exist_ok=True)
        scan = read_containers(base)
        _check(scan.problems)
        assert (CID in scan.containers) != (CID in scan.unusable)
        assert scan.complete == (not scan.problems)


@FUZZ
@given(st.lists(st.tuples(names, st.sampled_from(["dir", "file", "data", "link", "opts"])), max_size=5))
def test_volumes(entries: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "volumes"
        base.mkdir()
        for name, kind in entries:
            path = base / name
            if os.path.lexists(path):
                continue
            if kind == "file":
                path.write_bytes(b"x")
            elif kind == "link":
                os.symlink("/", path)
            else:
                path.mkdir()
                if kind == "data":
                    os.symlink("/etc", path / "_data")
                elif kind == "opts":
                    (path / "opts.json").write_bytes(b"{")
        scan = read_volumes(base)
        _check(scan.problems)
        for name, volume in scan.volumes.items():
            assert (base / name).is_dir() and not (base / name).is_symlink()
            assert not volume.has_data  # a symlinked _data is never taken for data


@FUZZ
@given(
    link=_maybe, lower=_maybe,
    targets=st.lists(st.tuples(names, st.sampled_from([f"../{HEX}/diff", "/", "..", "../../etc/diff",
                                                          "../x/diff", ""]) | names), max_size=4),
)  # fmt: skip
def test_overlay2(link: bytes | None, lower: bytes | None, targets: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "overlay2"
        (base / HEX / "diff").mkdir(parents=True)
        (base / "l").mkdir()
        _put(base / HEX / "link", link)
        _put(base / HEX / "lower", lower)
        for name, target in targets:
            if target and not os.path.lexists(base / "l" / name):
                os.symlink(target, base / "l" / name)
        scan = read_layer_dirs(base)
        _check(scan.problems)
        for short in scan.links.values():
            assert short.target_dir is None or "/" not in short.target_dir
            assert short.target_dir not in ("", ".", "..")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=_image, repositories=_json_or_bytes, layer_files=st.lists(_maybe, min_size=4, max_size=4),
    mount_files=st.lists(_maybe, min_size=3, max_size=3), container=_config | _json_or_bytes,
)  # fmt: skip
def test_whole_report_never_raises(
    config: bytes, repositories: bytes, layer_files: list[bytes | None],
    mount_files: list[bytes | None], container: bytes,
) -> None:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "docker"
        store = root / "image" / "overlay2"
        _put(store / "imagedb/content/sha256" / hashlib.sha256(config).hexdigest(), config)
        _put(store / "repositories.json", repositories)
        for name, data in zip(("diff", "size", "cache-id", "parent"), layer_files, strict=True):
            (store / "layerdb/sha256" / HEX).mkdir(parents=True, exist_ok=True)
            _put(store / "layerdb/sha256" / HEX / name, data)
        for name, data in zip(("mount-id", "init-id", "parent"), mount_files, strict=True):
            (store / "layerdb/mounts" / CID).mkdir(parents=True, exist_ok=True)
            _put(store / "layerdb/mounts" / CID / name, data)
        _put(root / "containers" / CID / "config.v2.json", container)
        (root / "overlay2" / HEX / "diff").mkdir(parents=True)
        (root / "volumes" / "v" / "_data").mkdir(parents=True)
        report = build_report(Location(root, "--root", None), Options(jobs=1))
        _check(report.problems)
        assert report.totals.root_disk is not None
