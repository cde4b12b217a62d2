"""locate -> read -> index -> measure -> account: one Report for one root."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .account import account
from .cache import LayerCache
from .index import METADATA, Index
from .locate import Location, containerd_in_use, containerd_store, detect_store
from .measure import Progress
from .model import Category, Problem, ProblemKind
from .report import FileSystem, Report
from .roots import measure_roots

if TYPE_CHECKING:
    from .stores.interface import Store


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


def index_root(location: Location, options: Options, now: float) -> Index:
    """Read and join a root's records, by the store the root holds (`stores/`)."""
    from .ctrdroot import daemon_json_of, find_containerd_root

    kind = detect_store(location.root)
    if kind.store != "containerd" and containerd_in_use(
        location.root, kind, daemon_json_of(location.root, location.daemon)
    ):
        kind = containerd_store(location.root)
    if kind.store == "containerd":
        where = find_containerd_root(
            location.root, options.containerd_root, options.containerd_root_source, location.daemon
        )
        # Imported here: most roots are graphdriver roots, and start-up counts in a short run.
        from .stores.containerd.store import ContainerdStore

        image_store: Store = ContainerdStore(location, kind, where)
    else:
        from .stores.graphdriver.read import GraphdriverStore

        image_store = GraphdriverStore(location, kind)
    index = image_store.index(now)
    if location.daemon is not None:
        index.notes.append(
            f"dockerd (pid {location.daemon.pid}) was running during the scan: "
            "anything changed in the last hour and referenced by nothing is reported as in flight"
        )
    return index


def _layer_cache(index: Index, options: Options, root: str) -> LayerCache | None:
    content = index.layout.layer_content
    if options.cache_dir is None or options.quick or content is None:
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
    return LayerCache(directory, root, layers, content=content)


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
    # Each root (the Docker root; a system containerd's) is walked as a root of its own and added.
    m, roots = measure_roots(
        index, options.progress, jobs=options.jobs or os.cpu_count() or 1, quick=options.quick, cache=cache
    )
    engine, why = _engine_id(location.root)
    if why is not None:
        index.problems.append(Problem(ProblemKind.metadata_unreadable, "engine-id", why))
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
