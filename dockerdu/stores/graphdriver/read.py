"""The graphdriver store (overlay2, fuse-overlayfs, vfs, overlay, aufs): its read, then the joins."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from ... import index as model
from ...chain import chain_ids
from ...damage import check_damage
from ...ids import ChainID
from ...index import IN_FLIGHT, Index
from ...layout import Layout, graphdriver_layout
from ...locate import Location, graph_drivers
from ...locate import Store as StoreKind
from ...model import Problem, ProblemKind
from ...readers.buildkit import join_build_cache, read_build_cache
from ...readers.containers import read_containers
from ...readers.imagedb import read_imagedb, read_references
from ...readers.layerdb import LayerRecord, read_layerdb
from ...readers.layerdirs import read_layer_dirs
from ...readers.volumes import read_volumes
from ...records import record
from .. import common
from .drivers import driver as driver_row
from .drivers import owned_paths
from .index import Scans, build_index


@record
class GraphdriverStore:
    """A Docker root whose images and layers a graphdriver keeps."""

    location: Location
    kind: StoreKind

    @property
    def layout(self) -> Layout:
        row = driver_row(self.kind.driver)
        return graphdriver_layout(str(self.location.root), row.name, row.layer_root, row.content)

    def index(self, now: float) -> Index:
        return index_graphdriver(self.location, self.kind, now)

    def layer_dir(self, key: str) -> str:
        return self.layout.layer_dir(key)

    def owned_paths(self) -> tuple[str, ...]:
        return owned_paths(self.kind.driver)


def index_graphdriver(location: Location, store: StoreKind, now: float) -> Index:
    """Read and join a graphdriver root.

    While a daemon runs, the readers see each file at a different moment, so a
    create or remove under way can look like a leftover or a dangling reference.
    Whatever orphan or problem the read finds is then read a second time, and kept
    only when that read finds it again; the rest was in flight.
    """
    index = read_and_join(location, store, now)
    if location.daemon is not None and (index.orphans or index.problems):
        _confirm(index, read_and_join(location, store, time.time()))
    return index


def read_root(root: Path, driver: str = "overlay2") -> Scans:
    """Run every reader over `root`."""
    store = root / "image" / driver
    rel = f"image/{driver}"
    layer_root = driver_row(driver).layer_root
    references, ref_problems = read_references(store, rel)
    imagedb = read_imagedb(store, rel)
    chains = {c for image in imagedb.images.values() for c in chain_ids(image.diff_ids)}
    try:
        top = tuple(sorted(os.listdir(root)))
    except OSError:
        top = ()
    layerdb = read_layerdb(store, rel)
    layer_dirs = read_layer_dirs(root / layer_root, layer_root)
    containers = read_containers(root / "containers")
    volumes = read_volumes(root / "volumes")
    buildkit = join_build_cache(read_build_cache(root / "buildkit"), chains, _LayerDB(layerdb.layers))
    return Scans(
        driver=driver,
        references=references,
        imagedb=imagedb,
        layerdb=layerdb,
        layer_dirs=layer_dirs,
        containers=containers,
        volumes=volumes,
        buildkit=buildkit,
        engine_id=os.path.lexists(root / "engine-id"),
        top_entries=top,
        image_drivers=tuple(graph_drivers(root)),
        problems=tuple(ref_problems),
        root=str(root),
    )


class _LayerDB:
    """layerdb's layers, as BuildKit's records name them (`readers.buildkit.LayerStore`)."""

    def __init__(self, layers: Mapping[ChainID, LayerRecord]) -> None:
        self.layers = layers

    def size(self, chain_id: str) -> int | None:
        layer = self.layers.get(ChainID(chain_id))
        return layer.size if layer is not None else None

    def cache_id(self, chain_id: str) -> str | None:
        layer = self.layers.get(ChainID(chain_id))
        return layer.cache_id if layer is not None else None


def all_problems(scans: Scans) -> list[Problem]:
    """The readers' problems, in one list."""
    return [
        *scans.problems,
        *scans.imagedb.problems,
        *scans.layerdb.problems,
        *scans.layer_dirs.problems,
        *scans.containers.problems,
        *scans.volumes.problems,
        *scans.buildkit.problems,
    ]


def read_and_join(location: Location, store: StoreKind, now: float) -> Index:
    """One read of the root and its joins, with the problems and SizeRw figures the index needs."""
    scans = read_root(location.root, store.driver)
    index = build_index(scans, now=now, daemon_running=location.daemon is not None)
    check_damage(index, scans)
    index.problems[:0] = all_problems(scans)
    if location.daemon is not None:
        _settle_unreadable(index, location.root, now)
    common.mark_store_unused(
        index, store.unused, f"image store the daemon does not use (it uses {store.store}): all reclaimable"
    )
    if driver_row(store.driver).naive_diff:
        from .naive import read_naive_rw_sizes  # here: most roots are on overlay2

        read_naive_rw_sizes(index, scans, location.root)
    return index


def _settle_unreadable(index: Index, root: Path, now: float) -> None:
    """Drop metadata_unreadable problems of files a running daemon is writing or removing.

    A layerdb mount dir exists a moment before its mount-id file, and a dir being
    removed loses its files one by one: unreadable for that moment, and changed (or
    gone) just now. Unreferenced layers are still not called orphans while such a
    file is unread, but that is no problem of the root.
    """
    kept: list[Problem] = []
    dropped = False
    for problem in index.problems:
        if problem.kind == ProblemKind.metadata_unreadable and _changed_within_window(
            root / problem.path, now
        ):
            dropped = True
        else:
            kept.append(problem)
    if dropped and not any(p.kind == ProblemKind.metadata_unreadable for p in kept):
        kept = [p for p in kept if p.kind != ProblemKind.references_incomplete]
    index.problems[:] = kept


def _changed_within_window(path: Path, now: float) -> bool:
    """Whether `path` (or, when it is missing, the dir that should hold it) changed within the window."""
    for candidate in (path, path.parent):
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            continue
        except OSError:
            return False
        return now - max(st.st_mtime, st.st_ctime) < model.IN_FLIGHT_SECONDS
    return True  # the file and its dir are gone: removed since they were read


def _confirm(index: Index, again: Index) -> None:
    """Keep the orphans and problems of `index` that a second read (`again`) found too."""
    orphans = {(o.kind, o.path) for o in again.orphans}
    kept = []
    for orphan in index.orphans:
        if (orphan.kind, orphan.path) in orphans:
            kept.append(orphan)
        else:
            for path in orphan.paths:
                index.mark(path, IN_FLIGHT)
    index.orphans[:] = kept
    problems = {(p.kind, p.path) for p in again.problems}
    index.problems[:] = [p for p in index.problems if (p.kind, p.path) in problems]
