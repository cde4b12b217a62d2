"""locate -> read -> index -> measure -> account: one Report for one root."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from . import index as index_module
from .account import account
from .cache import LayerCache
from .chain import chain_ids
from .damage import check_damage
from .index import IN_FLIGHT, LAYER_ROOTS, METADATA, NAIVE_DIFF_DRIVERS, Index, Owner, Scans, build_index
from .locate import Location, Store, containerd_in_use, containerd_store, detect_store, graph_drivers
from .measure import Progress, measure
from .model import Category, Orphan, OrphanKind, Problem, ProblemKind
from .readers.buildkit import read_build_cache
from .readers.containers import read_containers
from .readers.imagedb import read_imagedb, read_references
from .readers.layerdb import MountRecord, read_layerdb
from .readers.overlay2 import read_overlay2
from .readers.volumes import read_volumes
from .report import FileSystem, Report
from .roots import measure_containerd_root


@dataclass(frozen=True)
class Options:
    """How to scan."""

    driver: str = "overlay2"
    progress: Progress | None = None
    jobs: int = 0
    """Walker processes; 0 means one per core."""
    cache_dir: Path | None = None
    """Where to remember image-layer walks; None: no cache."""
    quick: bool = False
    """Take image figures from Docker's metadata alone: image layers are not walked."""
    containerd_root: Path | None = None
    """`--containerd-root`: where the containerd store's data is; None: find it."""
    containerd_root_source: str = "--containerd-root"


def read_root(root: Path, driver: str = "overlay2") -> Scans:
    """Run every reader over `root`."""
    store = root / "image" / driver
    rel = f"image/{driver}"
    layer_root = LAYER_ROOTS.get(driver, driver)
    references, ref_problems = read_references(store, rel)
    imagedb = read_imagedb(store, rel)
    chains = {c for image in imagedb.images.values() for c in chain_ids(image.diff_ids)}
    try:
        top = tuple(sorted(os.listdir(root)))
    except OSError:
        top = ()
    return Scans(
        driver=driver,
        references=references,
        imagedb=imagedb,
        layerdb=read_layerdb(store, rel),
        overlay2=read_overlay2(root / layer_root, layer_root),
        containers=read_containers(root / "containers"),
        volumes=read_volumes(root / "volumes"),
        buildkit=read_build_cache(root / "buildkit", chains),
        engine_id=os.path.lexists(root / "engine-id"),
        top_entries=top,
        image_drivers=tuple(graph_drivers(root)),
        problems=tuple(ref_problems),
    )


def all_problems(scans: Scans) -> list[Problem]:
    """The readers' problems, in one list."""
    return [
        *scans.problems,
        *scans.imagedb.problems,
        *scans.layerdb.problems,
        *scans.overlay2.problems,
        *scans.containers.problems,
        *scans.volumes.problems,
        *scans.buildkit.problems,
    ]


def _layer_dirs(index: Index) -> str:
    """The dir whose children are layer dirs (or snapshots), each walked as a task of its own."""
    if index.store != "containerd":
        return index.layer_root
    from .readers.containerd import snapshotter_dir

    return f"{snapshotter_dir(index.driver)}/snapshots"


def _mark_unused(index: Index, store: Store) -> None:
    """A graphdriver root that also holds an abandoned containerd store: that data is reclaimable."""
    for rel in store.unused:
        index.orphans.append(
            Orphan(
                OrphanKind.store_unused,
                rel,
                f"image store the daemon does not use (it uses {store.store}): all reclaimable",
                (rel,),
            )
        )
        index.mark(rel, Owner(Category.orphans, rel))


def index_root(location: Location, options: Options, now: float) -> Index:
    """Read and join a root's records, for the store the root holds.

    While a daemon runs, the readers see each file at a different moment, so a
    create or remove under way can look like a leftover or a dangling reference.
    Whatever orphan or problem the read of a graphdriver store finds is then read a
    second time, and kept only when that read finds it again; the rest was in flight.
    """
    from .ctrdroot import daemon_json_of, find_containerd_root

    store = detect_store(location.root)
    if store.store != "containerd" and containerd_in_use(
        location.root, store, daemon_json_of(location.root, location.daemon)
    ):
        store = containerd_store(location.root)
    if store.store == "containerd":
        where = find_containerd_root(
            location.root, options.containerd_root, options.containerd_root_source, location.daemon
        )
        # Imported here: most roots are graphdriver roots, and start-up counts in a short run.
        from .scan_containerd import containerd_index

        index = containerd_index(location, store, now, where)
    else:
        index = _read_and_join(location, store, now)
        if location.daemon is not None and (index.orphans or index.problems):
            _confirm(index, _read_and_join(location, store, time.time()))
    if location.daemon is not None:
        index.notes.append(
            f"dockerd (pid {location.daemon.pid}) was running during the scan: "
            "anything changed in the last hour and referenced by nothing is reported as in flight"
        )
    return index


def _read_and_join(location: Location, store: Store, now: float) -> Index:
    scans = read_root(location.root, store.driver)
    index = build_index(scans, now=now, daemon_running=location.daemon is not None)
    check_damage(index, scans)
    index.problems[:0] = all_problems(scans)
    if location.daemon is not None:
        _settle_unreadable(index, location.root, now)
    index.store = store.store
    _mark_unused(index, store)
    if store.driver in NAIVE_DIFF_DRIVERS:
        _read_naive_rw_sizes(index, scans, location.root)
    return index


def _naive_diff_dirs(
    index: Index, scans: Scans, mount: MountRecord, root: Path
) -> tuple[str, list[str]] | None:
    """The writable tree of a container and its parent's trees (topmost first), root-relative."""
    ov = scans.overlay2
    if index.driver == "overlay":
        return _overlay_diff_dirs(index, scans, mount, root)
    if index.driver == "vfs":  # full trees: the parent is the init layer's tree
        if mount.init_id is None or mount.mount_id not in ov.dirs or mount.init_id not in ov.dirs:
            return None
        return f"{index.layer_root}/{mount.mount_id}", [f"{index.layer_root}/{mount.init_id}"]
    layer_dir = ov.dirs.get(mount.mount_id)
    if layer_dir is None or not layer_dir.is_dir or layer_dir.lower_error is not None:
        return None
    targets = [ov.links[name].target_dir if name in ov.links else None for name in layer_dir.lower]
    if any(t is None for t in targets):
        return None
    return f"{index.layer_root}/{layer_dir.name}/diff", [f"{index.layer_root}/{t}/diff" for t in targets]


def _overlay_diff_dirs(
    index: Index, scans: Scans, mount: MountRecord, root: Path
) -> tuple[str, list[str]] | None:
    """overlay (v1): the container's `upper/` over `<lower-id>/root`, against its init layer's.

    At create the container copies the init layer's `upper/` (times kept) and its
    `lower-id`; an init layer made over an image layer has `upper/` and `lower-id`
    naming that layer, whose `root/` is the whole image tree (hard links to its parents').
    """
    ov = scans.overlay2
    base = index.layer_root
    if mount.init_id is None or mount.mount_id not in ov.dirs or mount.init_id not in ov.dirs:
        return None
    try:
        lower_id = (root / base / mount.mount_id / "lower-id").read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not lower_id or "/" in lower_id or lower_id not in ov.dirs:
        return None
    lowers = [f"{base}/{lower_id}/root"]
    if lower_id != mount.init_id:
        lowers.insert(0, f"{base}/{mount.init_id}/upper")
    return f"{base}/{mount.mount_id}/upper", lowers


def _read_naive_rw_sizes(index: Index, scans: Scans, root: Path) -> None:
    """SizeRw of each container on fuse-overlayfs or vfs: its tree compared with its parent's.

    A container whose writable dir, `lower` file or lower layers cannot be read keeps
    rw_size null (with a note when a dir could not be read).
    """
    from .naivediff import naive_diff_size  # here: most roots are on overlay2

    overlay = index.driver != "vfs"  # overlay and fuse-overlayfs: an upper dir over lowers
    for cid, view in index.containers.items():
        dirs = _naive_diff_dirs(index, scans, view.mount, root) if view.mount is not None else None
        if dirs is None:
            continue
        upper, lowers = dirs
        try:
            index.naive_rw_sizes[cid] = naive_diff_size(
                root / upper, [root / p for p in lowers], overlay=overlay
            )
        except OSError as e:
            index.notes.append(f"rw_size of container {cid[:12]} is unknown: {e}")


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
        return now - max(st.st_mtime, st.st_ctime) < index_module.IN_FLIGHT_SECONDS
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


def _layer_cache(index: Index, options: Options, root: str) -> LayerCache | None:
    if options.cache_dir is None or options.quick or index.store == "containerd":
        return None
    directory = options.cache_dir.resolve()
    if directory == Path(root) or Path(root) in directory.parents:
        index.notes.append(f"the cache dir {directory} lies under the Docker root: not used")
        return None
    layers = {
        f"{index.layer_root}/{layer.cache_id}": layer.cache_id
        for chain_id, layer in index.layers.items()
        if index.layer_owner.get(chain_id, METADATA).category == Category.images
    }
    return LayerCache(directory, root, layers)


def filesystem_of(root: Path) -> FileSystem | None:
    """Size and fullness of the file system holding `root`, as `df` (and psutil.disk_usage) tell it."""
    try:
        st = os.statvfs(root)
    except OSError:
        return None
    total = st.f_blocks * st.f_frsize
    used = total - st.f_bfree * st.f_frsize
    free = st.f_bavail * st.f_frsize  # what an unprivileged user may still write
    percent = round(used / (used + free) * 100, 1) if used + free else 0.0
    return FileSystem(total=total, used=used, free=free, percent=percent)


def build_report(location: Location, options: Options | None = None) -> Report:
    """Scan `location.root` and account for every byte under it."""
    options = options or Options()
    now = time.time()
    index = index_root(location, options, now)
    root = str(location.root)
    cache = _layer_cache(index, options, root)
    m = measure(
        root,
        index.marks,
        index.parents(),
        options.progress,
        split_parents=frozenset({_layer_dirs(index), "volumes"}),
        jobs=options.jobs or os.cpu_count() or 1,
        cache=cache,
        skip_owner=(lambda owner: owner.category == Category.images) if options.quick else None,
    )
    engine, why = _engine_id(location.root)
    if why is not None:
        index.problems.append(Problem(ProblemKind.metadata_unreadable, "engine-id", why))
    # A system containerd's root is walked as a root of its own and added.
    m, roots = measure_containerd_root(
        index,
        location.root,
        m,
        options.progress,
        jobs=options.jobs or os.cpu_count() or 1,
        quick=options.quick,
    )
    if cache is not None:
        try:
            cache.save()
        except OSError as e:
            index.notes.append(f"the layer cache could not be written to {cache.path}: {e.strerror}")
    return account(
        index,
        m,
        root=str(location.root),
        root_source=location.source,
        generated_at=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now)),  # no datetime import
        version=__version__,
        daemon_pid=location.daemon.pid if location.daemon else None,
        engine_id=os.path.lexists(location.root / "engine-id"),
        filesystem=filesystem_of(location.root),
        engine=engine,
        roots=roots,
    )


def _engine_id(root: Path) -> tuple[str | None, str | None]:
    """The engine ID Docker >= 23.0 keeps in `engine-id` (a UUID), if it can be read, and why not."""
    from .fsread import ReadError, read_text
    from .text import clean

    try:
        text = read_text(root / "engine-id", limit=256)
    except ReadError as e:
        if str(e) == "missing":
            return None, None  # dockerd >= 23.0 writes one at start
        if str(e) == "is a symlink":
            return None, "is a symlink (not followed): dockerd reads its engine ID from what it points to"
        # dockerd reads it with os.ReadFile at start: an error stops it, a FIFO blocks it.
        return None, f"{e}: dockerd (>= 23.0) cannot read its engine ID and will not start"
    return clean(text) or None, None
