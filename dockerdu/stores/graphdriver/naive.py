"""Docker's SizeRw where a driver makes it by a naive diff (vfs, fuse-overlayfs, overlay).

The diff itself is `naivediff.py`'s; this is where each driver keeps a container's tree
and the trees it is compared with.
"""

from __future__ import annotations

from pathlib import Path

from ...index import Index
from ...readers.layerdb import MountRecord
from .drivers import driver as driver_row
from .index import Scans


def _naive_diff_dirs(
    index: Index, scans: Scans, mount: MountRecord, root: Path
) -> tuple[str, list[str]] | None:
    """The writable tree of a container and its parent's trees (topmost first), root-relative."""
    ov = scans.layer_dirs
    row = driver_row(index.driver)
    if row.upper_dirs:
        return _overlay_diff_dirs(index, scans, mount, root)
    if row.full_trees:  # the parent is the init layer's tree
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
    ov = scans.layer_dirs
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


def read_naive_rw_sizes(index: Index, scans: Scans, root: Path) -> None:
    """SizeRw of each container on fuse-overlayfs or vfs: its tree compared with its parent's.

    A container whose writable dir, `lower` file or lower layers cannot be read keeps
    rw_size null (with a note when a dir could not be read).
    """
    from ...naivediff import naive_diff_size

    overlay = not driver_row(index.driver).full_trees  # overlay, fuse-overlayfs: an upper dir over lowers
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
