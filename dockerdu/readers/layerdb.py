"""Read `image/<driver>/layerdb/`: read-only layers, container mounts, tmp and removals."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..fsread import ReadError, list_dir, read_bytes, read_text
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
from ..model import Problem, ProblemKind
from ..records import record
from ..strconv import parse_int64

_T = TypeVar("_T")

REMOVING = re.compile(r"([0-9a-f]{64})-[0-9a-f]{64}-removing")
ID_FILE_LIMIT = 4096


@record
class LayerRecord:
    """layerdb/sha256/<chain>/: one read-only layer."""

    chain_id: ChainID
    diff_id: DiffID
    parent: ChainID | None
    cache_id: CacheID
    size: int | None
    changed: float = 0.0
    """Last change of the layerdb dir (ctime: the rename that registers a layer sets it)."""


@record
class MountRecord:
    """layerdb/mounts/<container>/: one container's writable layer."""

    container_id: ContainerID
    mount_id: MountID
    init_id: MountID | None
    parent: ChainID | None
    changed: float = 0.0
    """Last change of the mount dir (mtime or ctime), to tell one being created."""


@record
class Leftover:
    """A layerdb entry left by an interrupted write or delete, and the dir it names."""

    name: str
    cache_id: CacheID | None
    changed: float
    """Last change of the entry (ctime, which a rename sets too), to tell one still in flight."""
    parent: ChainID | None = None
    """The layer it names as its parent, which it keeps in use while in flight."""


@record
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
            problems.append(_stray(relpath, entry, "layer"))
            continue
        chain_id = ChainID("sha256:" + entry.name)
        try:
            layer, size_problem = _read_layer(Path(entry.path), chain_id)
        except FieldError as e:
            unreadable_layers.add(chain_id)
            problems.append(Problem(ProblemKind.metadata_unreadable, f"{relpath}/{e.name}", str(e)))
            continue
        layers[chain_id] = layer
        if size_problem is not None:
            problems.append(Problem(ProblemKind.metadata_unreadable, f"{relpath}/size", size_problem))
    mounts: dict[ContainerID, MountRecord] = {}
    unreadable_mounts: set[ContainerID] = set()
    for entry in _entries(base / "mounts", f"{rel}/layerdb/mounts", problems):
        mount_rel = f"{rel}/layerdb/mounts/{entry.name}"
        if not HEX64.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            problems.append(_stray(mount_rel, entry, "container mount"))
            continue
        container_id = ContainerID(entry.name)
        try:
            mounts[container_id] = _read_mount(Path(entry.path), container_id)
        except FieldError as e:
            unreadable_mounts.add(container_id)
            problems.append(Problem(ProblemKind.metadata_unreadable, f"{mount_rel}/{e.name}", str(e)))
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
        problems.append(Problem(ProblemKind.metadata_unreadable, rel, str(e)))
        return []


def _stray(rel: str, entry: os.DirEntry[str], what: str) -> Problem:
    kind = "dir" if entry.is_dir(follow_symlinks=False) else "not a dir"
    name = entry.name if HEX64.fullmatch(entry.name) else f"not a {what} ID"
    return Problem(ProblemKind.metadata_unreadable, rel, f"{name} ({kind}): Docker ignores it")


class FieldError(ReadError):
    """One file of a layerdb entry could not be read or parsed; `name` says which."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name


def _field(path: Path, name: str) -> str:
    try:
        return read_text(path / name, limit=ID_FILE_LIMIT)
    except ReadError as e:
        raise FieldError(name, str(e)) from None


def _id_field(path: Path, name: str, parse: Callable[[str], _T]) -> _T:
    text = _field(path, name)
    try:
        return parse(text)
    except IDError as e:
        raise FieldError(name, str(e)) from None


def _optional_id(path: Path, name: str, parse: Callable[[str], _T]) -> _T | None:
    """A file Docker writes only for some entries (`parent`, `init-id`): absent is None."""
    if not os.path.lexists(path / name):
        return None
    return _id_field(path, name, parse)


def _read_layer(path: Path, chain_id: ChainID) -> tuple[LayerRecord, str | None]:
    """The layer, and why its `size` is unusable (None when it is fine)."""
    diff_id = _id_field(path, "diff", parse_diff_id)
    cache_id = _id_field(path, "cache-id", parse_cache_id)
    parent = _optional_id(path, "parent", parse_chain_id)
    size: int | None = None
    size_problem: str | None = None
    try:
        # Unstripped: Docker's ParseInt of the whole file fails on a newline or a space.
        text = read_bytes(path / "size", limit=ID_FILE_LIMIT).decode("ascii", errors="replace")
    except ReadError as e:
        size_problem = f"size: {e}"
    else:
        value = parse_int64(text)
        if value is None:
            size_problem = (
                f"size: {text[:40]!r} is not an int64 Docker can parse: "
                "Docker does not load this layer, nor the images and containers on it"
            )
        elif value < 0:
            size_problem = f"size: negative byte count {value}"
        else:
            size = value
    return LayerRecord(chain_id, diff_id, parent, cache_id, size, _changed(path)), size_problem


def _read_mount(path: Path, container_id: ContainerID) -> MountRecord:
    mount_id = _id_field(path, "mount-id", parse_mount_id)
    init_id = _optional_id(path, "init-id", parse_mount_id)
    parent = _optional_id(path, "parent", parse_chain_id)
    return MountRecord(container_id, mount_id, init_id, parent, _changed(path))


def _changed(path: Path) -> float:
    """Last change (mtime or ctime: a rename sets the ctime only) of `path`, 0 when unknown."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0.0
    return max(st.st_mtime, st.st_ctime)


def _leftover(entry: os.DirEntry[str]) -> Leftover | None:
    """A tmp/ or -removing entry, or None when it vanished while we looked (the write or delete ended)."""
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return None
    try:
        parent = _optional_id(Path(entry.path), "parent", parse_chain_id)
    except ReadError:
        parent = None
    return Leftover(entry.name, _optional_cache_id(Path(entry.path)), max(st.st_mtime, st.st_ctime), parent)


def _optional_cache_id(path: Path) -> CacheID | None:
    try:
        return parse_cache_id(read_text(path / "cache-id", limit=ID_FILE_LIMIT))
    except (ReadError, IDError):
        return None
