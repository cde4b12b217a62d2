"""The containerd store's read and join, with its data in a managed or a system containerd's root."""

from __future__ import annotations

import os
from pathlib import Path

from ...ctrdroot import ContainerdRoot, has_metadata, running_containerds
from ...damage import check_volume_data
from ...index import Index
from ...layout import Layout
from ...locate import Location, Store, _resolve
from ...model import Problem, ProblemKind
from ...readers.buildkit import join_build_cache, read_build_cache
from ...readers.containerd import CTRD, ContainerdScan, read_containerd
from ...readers.containers import read_containers
from ...readers.volumes import read_volumes
from .index import SnapshotUsage, build_containerd_index


def separate_root(root: Path, where: ContainerdRoot | None) -> str | None:
    """The containerd root as an absolute path when it lies outside the Docker root `root`
    (a system containerd's root): walked as a root of its own. None: none, or inside `root`."""
    if where is None or where.managed or where.path is None:
        return None
    path = _resolve(where.path)
    if path == _resolve(root) or _resolve(root) in path.parents:
        return None
    return str(path)


def base_of(root: Path, where: ContainerdRoot) -> str:
    """The containerd root as the index names the paths under it: `containerd/daemon` (managed,
    or none found), the absolute path of a separate root, else its path relative to `root`."""
    if where.managed or where.path is None:
        return CTRD
    if not has_metadata(where.path):
        return str(where.path)
    return separate_root(root, where) or _inside(root, where.path)


def read_store(root: Path, store: Store, where: ContainerdRoot, layout: Layout) -> ContainerdScan:
    """The containerd store's records, or an unreadable scan naming what is missing."""
    base = base_of(root, where)
    if where.managed:
        return read_containerd(root, store.driver, base, layout.namespace)
    if where.path is None or not has_metadata(where.path):
        missing = (
            "its root was not found"
            if where.path is None
            else f"{where.path} holds no containerd metadata (io.containerd.metadata.v1.bolt/meta.db)"
        )
        scan = ContainerdScan(store.driver, base, layout.namespace)
        scan.readable = False
        scan.problems.append(
            Problem(
                ProblemKind.containerd_root_missing,
                str(where.path) if where.path is not None else "containers",
                f"the containers use the containerd image store ({store.driver}) but {missing}: "
                "images, writable layers and build cache are unknown and no container, volume or "
                "cache is called an orphan; pass --containerd-root with containerd's root "
                "(e.g. /var/lib/containerd)",
            )
        )
        return scan
    scan = read_containerd(root, store.driver, base, layout.namespace)
    if not scan.docker_namespace and _entries(root / "containers"):
        # Another containerd's root (a kubelet's only?): nothing in it can prove a Docker orphan.
        scan.readable = False
        scan.problems.append(
            Problem(
                ProblemKind.containerd_root_missing,
                str(where.path),
                f"{where.path} holds no Docker namespace (moby) while the containers use the containerd "
                "image store: not the containerd this Docker used? No image, writable-layer or "
                "build-cache figure, no orphan claimed; pass --containerd-root with the right root",
            )
        )
    return scan


def walked_root(root: Path, where: ContainerdRoot) -> str | None:
    """The separate containerd root, when there is one to walk beside the Docker root."""
    separate = separate_root(root, where)
    return separate if separate is not None and os.path.isdir(separate) else None


def _entries(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _inside(root: Path, path: Path) -> str:
    return os.path.relpath(path, root)


def containerd_running(where: ContainerdRoot) -> bool:
    """Whether a containerd runs on a system containerd's root: its other clients (a kubelet)
    may be pulling or unpacking, so what changed lately is in flight, never an orphan."""
    if where.managed or where.path is None:
        return False
    return any(_resolve(c.root) == _resolve(where.path) for c in running_containerds())


def containerd_index(
    location: Location, store: Store, now: float, where: ContainerdRoot, layout: Layout
) -> Index:
    """Read and join a containerd-store root: Docker's root and the containerd root `where`."""
    root = location.root
    containers = read_containers(root / "containers")
    volumes = read_volumes(root / "volumes")
    ctrd = read_store(root, store, where, layout)
    ctrd_live = containerd_running(where)
    sizes = SnapshotUsage(str(root), ctrd)
    buildkit = join_build_cache(
        read_build_cache(root / "buildkit" / f"containerd-{store.driver}"), (), None, sizes
    )
    try:
        top = tuple(sorted(os.listdir(root)))
    except OSError:
        top = ()
    index = build_containerd_index(
        str(root),
        ctrd,
        containers,
        volumes,
        buildkit,
        top_entries=top,
        engine_id=os.path.lexists(root / "engine-id"),
        unused_paths=store.unused,
        now=now,
        daemon_running=location.daemon is not None or ctrd_live,
        sizes=sizes,
        layout=layout,
    )
    check_volume_data(index)
    index.problems[:0] = [*containers.problems, *volumes.problems, *buildkit.problems]
    index.containerd_root = where
    if ctrd_live and location.daemon is None:
        index.notes.append(
            f"containerd was running on {where.path} during the scan: anything of its store changed "
            "in the last hour and referenced by nothing is reported as in flight"
        )
    index.namespaces = ctrd.namespaces
    if not ctrd.readable and not where.managed:
        index.incomplete |= {
            "images", "containers.rw_size", "docker.layers_size", "build_cache",
            "reclaimable.images", "reclaimable.containers", "reclaimable.build_cache",
        }  # fmt: skip
        index.incomplete |= {f"containers:{cid}" for cid in containers.containers}
    return index
