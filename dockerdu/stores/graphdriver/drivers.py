"""The graphdrivers dockerdu reads, one row each: where their layers live and how Docker sizes them.

Every driver-specific rule of the graphdriver store asks this table, never the driver's
name. A new driver is a new row here, plus whatever rules of its own its layout needs
(e.g. overlay's `lower-id`, in `naive.py`). btrfs and zfs keep their layers in
subvolumes and datasets (`btrfs/subvolumes/<id>`, `zfs/graph/<id>`): rows for them
are still to be written, once their roots have been read and checked against Docker.
"""

from __future__ import annotations

from ...records import record


@record
class Driver:
    """One graphdriver's on-disk layout and size rules."""

    name: str
    layer_root: str
    """Root-relative dir whose children are the layer dirs (`overlay2`, `vfs/dir`)."""
    content: str | None
    """The subdir of a layer dir holding the layer's own files, which Docker sizes (`diff`);
    None: the whole dir is the layer (vfs's full trees, aufs's diffs, overlay's `root/`/`upper/`)."""
    links: bool
    """Keeps `l/` short links and each layer's `link` and `lower` files (overlay2, fuse-overlayfs)."""
    naive_diff: bool
    """A container's SizeRw is Docker's naive diff against its parent (archive.ChangesDirs
    then ChangesSize), not a walk of its writable dir."""
    side_dirs: tuple[str, ...] = ()
    """Root-relative dirs that hold, under each layer dir's name, more of that layer
    (aufs: its parents list `aufs/layers/<id>` and mount point `aufs/mnt/<id>`)."""
    full_trees: bool = False
    """Each layer dir is a full copy of its parent's tree plus its own changes (vfs): measured
    whole, never merged, and a container's parent tree is its init layer's."""
    whiteout_files: bool = False
    """Layers may hold whiteouts as `.wh.` files (fuse-overlayfs's fallback); kernel overlayfs
    reads only its devices and xattrs, so there a `.wh.` file is a file."""
    upper_dirs: bool = False
    """A layer dir holds `upper/` over a `lower-id` layer's `root/` (overlay, v1)."""

    @property
    def cached(self) -> bool:
        """Whether the walk of an image layer can be remembered: its `content` dir proves it current."""
        return self.content is not None


DRIVERS: dict[str, Driver] = {
    d.name: d
    for d in (
        Driver("overlay2", "overlay2", content="diff", links=True, naive_diff=False),
        Driver("fuse-overlayfs", "fuse-overlayfs", content="diff", links=True, naive_diff=True,
               whiteout_files=True),
        Driver("vfs", "vfs/dir", content=None, links=False, naive_diff=True, full_trees=True),
        Driver("overlay", "overlay", content=None, links=False, naive_diff=True, upper_dirs=True),
        Driver("aufs", "aufs/diff", content=None, links=False, naive_diff=False,
               side_dirs=("aufs/layers", "aufs/mnt")),
    )
}  # fmt: skip
"""The drivers whose layout dockerdu knows, by name."""

OTHER_DRIVERS = ("btrfs", "zfs")
"""Graphdrivers Docker has that have no row yet: their trees are still Docker's, not someone else's."""


def driver(name: str) -> Driver:
    """The row of `name`; a driver with no row is read as overlay2 lays out its dir."""
    row = DRIVERS.get(name)
    if row is not None:
        return row
    return Driver(name, name, content="diff", links=True, naive_diff=False)


def top_entries() -> frozenset[str]:
    """Every driver's own top-level dir: Docker's, whichever driver the daemon uses."""
    return frozenset({*DRIVERS, *OTHER_DRIVERS})


def owned_paths(name: str) -> tuple[str, ...]:
    """The root-relative paths of a graphdriver's data: its image metadata and its own dir."""
    return (f"image/{name}", name)
