"""Damage that reads fine but breaks Docker: references that point nowhere, data that leaves the root.

Checked after the joins, on what is in use. Nothing here changes an owner; a layer dir
or volume whose data is a symlink keeps its owner, but its measured figures are left
out (`Index.data_outside`) and flagged, since the walk never follows the link.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from .ids import ContainerID
from .index import Index
from .model import Category, Problem, ProblemKind
from .stores.graphdriver.drivers import driver as driver_row

if TYPE_CHECKING:
    from .stores.graphdriver.index import Scans

IN_USE = ("images", "containers", "build_cache")


def check_damage(index: Index, scans: Scans) -> None:
    """Add a problem for each dangling reference and each data dir that is a symlink."""
    store = f"image/{scans.driver}"
    _repositories(index, scans, store)
    _layer_parents(index, scans, store)
    _mount_parents(index, scans, store)
    _lowers(index, scans)
    _layer_data(index, scans)
    check_volume_data(index)


def _repositories(index: Index, scans: Scans, store: str) -> None:
    refs = scans.references
    path = f"{store}/repositories.json"
    images = scans.imagedb.images
    if refs.missing and images:
        index.problems.append(
            Problem(
                ProblemKind.metadata_unreadable,
                path,
                f"missing, with {len(images)} images in imagedb: Docker recreates it empty at start, "
                "every image becomes dangling and `docker image prune` deletes them",
            )
        )
    known = set(images) | set(scans.imagedb.unreadable)
    for image_id, names in sorted({**refs.digests, **refs.tags}.items()):
        if image_id not in known and scans.imagedb.readable:
            for name in names[:3]:
                index.problems.append(
                    Problem(
                        ProblemKind.reference_dangling,
                        path,
                        f"{name[:80]!r} names image {image_id[7:19]}, which is not in imagedb: "
                        "Docker lists no such image and cannot run or push that name",
                    )
                )


def _layer_parents(index: Index, scans: Scans, store: str) -> None:
    layers = scans.layerdb.layers
    unreadable = scans.layerdb.unreadable_layers
    for chain_id, layer in sorted(layers.items()):
        if layer.parent is not None and layer.parent not in layers and layer.parent not in unreadable:
            index.problems.append(
                Problem(
                    ProblemKind.reference_dangling,
                    f"{store}/layerdb/sha256/{chain_id[7:]}/parent",
                    f"names parent layer {layer.parent[7:19]}, which is not in layerdb: Docker does not "
                    "load this layer, nor the images and containers on it",
                )
            )


def _mount_parents(index: Index, scans: Scans, store: str) -> None:
    layers = scans.layerdb.layers
    for container_id, view in sorted(index.containers.items()):
        parent = view.mount.parent if view.mount is not None else None
        if parent is not None and parent not in layers and parent not in scans.layerdb.unreadable_layers:
            index.problems.append(
                Problem(
                    ProblemKind.reference_dangling,
                    f"{store}/layerdb/mounts/{container_id}/parent",
                    f"names layer {parent[7:19]}, which is not in layerdb: Docker cannot load the layer "
                    f"of container {view.record.name or container_id[:12]}, which cannot start",
                )
            )


def _lowers(index: Index, scans: Scans) -> None:
    """A `lower` naming an `l/` link that is nobody's (a layer's own missing link is `link_missing`)."""
    if driver_row(index.driver).full_trees:  # a `lower` there is a file of the image's tree
        return
    ov = scans.layer_dirs
    if not ov.readable:
        return
    named = {d.link for d in ov.dirs.values() if d.link}
    for name, layer_dir in sorted(ov.dirs.items()):
        owner = index.dir_owner.get(name)
        if owner is None or owner.category not in IN_USE:
            continue
        gone = [link for link in layer_dir.lower if link not in ov.links and link not in named]
        if not gone:
            continue
        # A container's own `lower` lists every layer below it; a new container copies its
        # image's top layer's `lower` (seen on 20.10: `docker run` fails, older containers start).
        view = index.containers.get(ContainerID(owner.key)) if owner.category == Category.containers else None
        breaks = "new containers and builds on it fail (error creating overlay mount)"
        if view is not None:
            breaks = f"container {view.record.name or owner.key[:12]} cannot start"
        index.problems.append(
            Problem(
                ProblemKind.reference_dangling,
                f"{index.layer_root}/{name}/lower",
                f"names l/{gone[0]}, which does not exist ({len(gone)} of {len(layer_dir.lower)} "
                f"lower layers): overlay2 cannot mount this layer; {breaks}",
            )
        )


def _outside(rel_dir: str, target: str) -> bool:
    """Whether a symlink in `rel_dir` (root-relative) to `target` leaves the root."""
    if target.startswith("/"):
        return True
    return posixpath.normpath(posixpath.join(rel_dir, target)).split("/")[0] == ".."


def _symlink_problem(path: str, target: str, users: str) -> Problem:
    where = "outside the root" if _outside(posixpath.dirname(path), target) else "elsewhere in the root"
    return Problem(
        ProblemKind.data_outside_root,
        path,
        f"is a symlink to {target[:120]!r} ({where}), not a dir: dockerdu does not follow it, "
        f"and Docker would mount what lies there into {users}; its figures are not measured",
    )


def _layer_data(index: Index, scans: Scans) -> None:
    for name, layer_dir in sorted(scans.layer_dirs.dirs.items()):
        if layer_dir.diff_link is None:
            continue
        owner = index.dir_owner.get(name)
        if owner is None or owner.category not in IN_USE:
            continue
        users = "the containers of every image with this layer"
        if owner.category == Category.build_cache:
            users = "the builds that use this cache"
        view = index.containers.get(ContainerID(owner.key)) if owner.category == Category.containers else None
        if view is not None:
            users = f"container {view.record.name or owner.key[:12]}"
        path = f"{index.layer_root}/{name}/diff"
        index.problems.append(_symlink_problem(path, layer_dir.diff_link, users))
        index.data_outside.add(name)
        index.incomplete.add(f"{owner.category}:{owner.key}")


def check_volume_data(index: Index) -> None:
    """A volume's `_data` that is a symlink: what Docker would mount into its containers."""
    for name, volume in sorted(index.volumes.volumes.items()):
        if volume.data_link is None:
            continue
        users = [
            index.containers[c].record.name or c[:12]
            for c in index.volume_users.get(name, ())
            if c in index.containers
        ]
        who = "containers " + ", ".join(sorted(users)) if users else "every container that uses it"
        index.problems.append(_symlink_problem(f"volumes/{name}/_data", volume.data_link, who))
        index.incomplete.add(f"volumes:{name}")
