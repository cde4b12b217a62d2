"""Where a Docker host keeps its bytes: the roots, their roles, the store, the driver, the namespace.

The index names a path under the Docker root relative to it, and a path under any other
root (a system containerd's) by its absolute path, which no path of the Docker root's walk
can match: each root's marks are those that start with its `prefix`. Measure walks each root
within its own file system, `which` and the cache ask this value, never which store it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from .records import record

_T = TypeVar("_T")


@record
class Root:
    """One dir tree holding Docker's bytes, walked on its own."""

    path: str
    """Absolute path of the root."""
    role: str
    """`docker` (the data root) or `containerd` (a system containerd's root)."""
    prefix: str
    """How the index's marks name the paths under this root: "" (relative to the Docker root),
    or the root's absolute path and a slash."""
    split: frozenset[str]
    """Dirs, relative to this root, whose children are each walked as a task of their own."""

    def relative(self, marked: str) -> str:
        """A marked path under this root, relative to it."""
        return marked[len(self.prefix) :]


@record
class Layout:
    """The roots involved and the store that lays out their data."""

    store: str
    """`containerd`, or the graphdriver name (`overlay2`, `vfs`, ...)."""
    driver: str
    """The graphdriver, or the containerd snapshotter (`overlayfs`)."""
    roots: tuple[Root, ...]
    """The Docker root first; then, with its data outside it, the containerd root."""
    namespace: str = ""
    """The containerd namespace holding Docker's data (`moby`); "" on a graphdriver store."""
    blobs: str = ""
    """Where the content store's blobs are (`.../blobs/sha256/`), as the marks name it; "" for none."""
    layer_root: str = ""
    """The dir of the layer dirs as the marks name it: `overlay2`, `vfs/dir`, a snapshotter's
    `snapshots` (under `containerd/daemon/`, or a system containerd's root)."""
    layer_word: str = "cache ID"
    """What Docker calls the name of a layer's dir: a layer's `cache ID`, a `snapshot`."""
    layer_content: str | None = None
    """The subdir of an image layer's dir whose identity proves a remembered walk of the layer
    still current (`diff`); None: image-layer walks are not remembered."""

    def layer_dir(self, key: str) -> str:
        """Where the layer dir `key` (a cache ID, a snapshot's dir name) lives, as the marks name it."""
        return f"{self.layer_root}/{key}"

    @property
    def docker(self) -> Root:
        """The Docker data root."""
        return self.roots[0]

    def marks_of(self, root: Root, marks: Mapping[str, _T]) -> dict[str, _T]:
        """The marks of the paths under `root`, relative to it."""
        if not root.prefix:
            others = tuple(r.prefix for r in self.roots if r.prefix)
            return {rel: m for rel, m in marks.items() if not (others and rel.startswith(others))}
        return {root.relative(rel): m for rel, m in marks.items() if rel.startswith(root.prefix)}

    def root_of(self, marked: str) -> Root:
        """The root a marked path lies under."""
        for root in self.roots[1:]:
            if marked.startswith(root.prefix):
                return root
        return self.docker


def graphdriver_layout(root: str, driver: str, layer_root: str, content: str | None) -> Layout:
    """A graphdriver store: one root, its layer dirs and volumes walked as tasks of their own."""
    split = frozenset({layer_root, "volumes"})
    return Layout(
        driver, driver, (Root(root, "docker", "", split),), layer_root=layer_root, layer_content=content
    )


def containerd_layout(root: str, snapshotter: str, namespace: str, base: str, separate: str | None) -> Layout:
    """A containerd store: the Docker root and, when its data is outside it, the containerd root.

    `base` is the containerd root as the marks name it: `containerd/daemon` (managed by
    dockerd), or the path of a system containerd's root; `separate` is that root's absolute
    path when it lies outside the Docker root, walked then as a root of its own.
    """
    from .readers.containerd import CONTENT, snapshotter_dir  # here: most roots are graphdriver roots

    snapshots = f"{snapshotter_dir(snapshotter)}/snapshots"
    roots: tuple[Root, ...] = (Root(root, "docker", "", frozenset({snapshots, "volumes"})),)
    if separate is not None:
        own = f"{snapshotter_dir(snapshotter, separate)}/snapshots"[len(separate) + 1 :]
        roots += (Root(separate, "containerd", separate + "/", frozenset({own})),)
    blobs = f"{base}/{CONTENT}/blobs/sha256/"
    snapshot_dirs = f"{snapshotter_dir(snapshotter, base)}/snapshots"
    return Layout("containerd", snapshotter, roots, namespace, blobs, snapshot_dirs, layer_word="snapshot")
