"""Read `image/<driver>/layerdb/`: read-only layers, container mounts, tmp and removals."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..fsread import ReadError, list_dir, read_text
from ..ids import (
    HEX64,
    CacheID,
    ChainID,
    ContainerID,
    DiffID,
    IDError,
    MountID,
    parse_cache_id,
    parse_chain_id,
    parse_diff_id,
    parse_mount_id,
)
from ..model import Problem

REMOVING = re.compile(r"([0-9a-f]{64})-[0-9a-f]{64}-removing")


@dataclass(frozen=True)
class LayerRecord:
    """layerdb/sha256/<chain>/: one read-only layer."""

    chain_id: ChainID
    diff_id: DiffID
    parent: ChainID | None
    cache_id: CacheID
    size: int | None
    changed: float = 0.0
    """Last change of the layerdb dir (ctime: the rename that registers a layer sets it)."""


@dataclass(frozen=True)
class MountRecord:
    """layerdb/mounts/<container>/: one container's writable layer."""

    container_id: ContainerID
    mount_id: MountID
    init_id: MountID | None
    parent: ChainID | None
    changed: float = 0.0
    """Last change of the mount dir (mtime or ctime), to tell one being created."""


@dataclass(frozen=True)
class Leftover:
    """A layerdb entry left by an interrupted write or delete, and the dir it names."""

    name: str
    cache_id: CacheID | None
    changed: float
    """Last change of the entry (ctime, which a rename sets too), to tell one still in flight."""
    parent: ChainID | None = None
    """The layer it names as its parent, which it keeps in use while in flight."""


@dataclass(frozen=True)
class LayerDBScan:
    """What layerdb holds; `complete` is False when some reference could not be read."""

    layers: dict[ChainID, LayerRecord]
    mounts: dict[ContainerID, MountRecord]
    removing: tuple[Leftover, ...]
    tmp: tuple[Leftover, ...]
    unreadable_layers: frozenset[ChainID]
    unreadable_mounts: frozenset[ContainerID]
    problems: tuple[Problem, ...]

    @property
    def complete(self) -> bool:
        """Whether every layer and mount could be read, so every dir they name is known."""
        return not self.unreadable_layers and not self.unreadable_mounts


def read_layerdb(store: Path, rel: str) -> LayerDBScan:
    """Read layerdb under `store` (= image/<driver>); `rel` is its root-relative path."""
    base = store / "layerdb"
    problems: list[Problem] = []
    layers: dict[ChainID, LayerRecord] = {}
    removing: list[Leftover] = []
    unreadable_layers: set[ChainID] = set()
    for entry in _entries(base / "sha256", f"{rel}/layerdb/sha256", problems):
        relpath = f"{rel}/layerdb/sha256/{entry.name}"
        if REMOVING.fullmatch(entry.name):
            leftover = _leftover(entry)
            if leftover is not None:
                removing.append(leftover)
            continue
        if not HEX64.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        chain_id = ChainID("sha256:" + entry.name)
        try:
            layer = _read_layer(Path(entry.path), chain_id)
        except ReadError as e:
            unreadable_layers.add(chain_id)
            problems.append(Problem("metadata_unreadable", relpath, str(e)))
            continue
        layers[chain_id] = layer
        if layer.size is None:
            problems.append(Problem("metadata_unreadable", f"{relpath}/size", "no usable size"))
    mounts: dict[ContainerID, MountRecord] = {}
    unreadable_mounts: set[ContainerID] = set()
    for entry in _entries(base / "mounts", f"{rel}/layerdb/mounts", problems):
        if not HEX64.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        container_id = ContainerID(entry.name)
        try:
            mounts[container_id] = _read_mount(Path(entry.path), container_id)
        except ReadError as e:
            unreadable_mounts.add(container_id)
            problems.append(Problem("metadata_unreadable", f"{rel}/layerdb/mounts/{entry.name}", str(e)))
    tmp = tuple(
        leftover
        for e in _entries(base / "tmp", f"{rel}/layerdb/tmp", problems)
        if (leftover := _leftover(e)) is not None
    )
    return LayerDBScan(
        layers,
        mounts,
        tuple(removing),
        tmp,
        frozenset(unreadable_layers),
        frozenset(unreadable_mounts),
        tuple(problems),
    )


def _entries(path: Path, rel: str, problems: list[Problem]) -> list[os.DirEntry[str]]:
    try:
        return sorted(list_dir(path), key=lambda e: e.name)
    except ReadError as e:
        problems.append(Problem("metadata_unreadable", rel, str(e)))
        return []


def _field(path: Path, name: str) -> str:
    try:
        return read_text(path / name, limit=4096)
    except ReadError as e:
        raise ReadError(f"{name}: {e}") from None


def _read_layer(path: Path, chain_id: ChainID) -> LayerRecord:
    try:
        diff_id = parse_diff_id(_field(path, "diff"))
        cache_id = parse_cache_id(_field(path, "cache-id"))
        parent = _optional_chain(path)
    except IDError as e:
        raise ReadError(str(e)) from None
    try:
        size: int | None = int(_field(path, "size"))
        if size is not None and size < 0:
            size = None
    except (ReadError, ValueError):
        size = None
    try:
        st = os.lstat(path)
        changed = max(st.st_mtime, st.st_ctime)
    except OSError:
        changed = 0.0
    return LayerRecord(chain_id, diff_id, parent, cache_id, size, changed)


def _optional_chain(path: Path) -> ChainID | None:
    try:
        text = _field(path, "parent")
    except ReadError as e:
        if str(e) == "parent: missing":
            return None
        raise
    return parse_chain_id(text)


def _read_mount(path: Path, container_id: ContainerID) -> MountRecord:
    try:
        mount_id = parse_mount_id(_field(path, "mount-id"))
        try:
            init_id: MountID | None = parse_mount_id(_field(path, "init-id"))
        except ReadError as e:
            if str(e) != "init-id: missing":
                raise
            init_id = None
        parent = _optional_chain(path)
    except IDError as e:
        raise ReadError(str(e)) from None
    try:
        st = os.lstat(path)
        changed = max(st.st_mtime, st.st_ctime)
    except OSError:
        changed = 0.0
    return MountRecord(container_id, mount_id, init_id, parent, changed)


def _leftover(entry: os.DirEntry[str]) -> Leftover | None:
    """A tmp/ or -removing entry, or None when it vanished while we looked (the write or delete ended)."""
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return None
    try:
        parent = _optional_chain(Path(entry.path))
    except (ReadError, IDError):
        parent = None
    return Leftover(entry.name, _optional_cache_id(Path(entry.path)), max(st.st_mtime, st.st_ctime), parent)


def _optional_cache_id(path: Path) -> CacheID | None:
    try:
        return parse_cache_id(read_text(path / "cache-id", limit=4096))
    except (ReadError, IDError):
        return None
