"""What every store does the same way: the marks of top entries, volumes, logs and unused stores,
and the count of each image's containers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from ..ids import ContainerID, ImageID
from ..index import METADATA, Index, Owner
from ..model import Category, Orphan, OrphanKind
from ..readers.volumes import VolumesScan
from .graphdriver.drivers import top_entries

KNOWN_TOP = frozenset(
    {
        "image", "containers", "volumes", "network", "plugins", "swarm", "trust", "runtimes",
        "tmp", "tmp-old", "engine-id", "buildkit", "containerd", "rootfs", *top_entries(),
    }
)  # fmt: skip
"""Entries of a Docker root that are Docker's, whichever store and driver it uses."""


def mark_top_entries(index: Index, top: Iterable[str]) -> None:
    """Each entry of the Docker root: Docker's metadata, or (one Docker never makes) `other`."""
    for name in top:
        index.mark(name, METADATA if name in KNOWN_TOP else Owner(Category.other, name))


def mark_logs(index: Index, container_id: ContainerID, log_files: Iterable[str]) -> None:
    """A loaded container's log files: charged to its logs, sized as Docker's LogPath."""
    for name in log_files:
        index.mark(
            f"containers/{container_id}/{name}", Owner(Category.logs, container_id), f"log:{container_id}"
        )


def mark_volumes(index: Index, volumes: VolumesScan) -> None:
    """Each volume's dir is the volume's; its `_data` is what Docker sizes."""
    for name, volume in volumes.volumes.items():
        index.mark(f"volumes/{name}", Owner(Category.volumes, name))
        if volume.has_data:
            index.mark(f"volumes/{name}/_data", size_key=f"vol:{name}")


def mark_store_unused(index: Index, paths: Iterable[str], reason: str) -> None:
    """The data of an image store the daemon does not use: an orphan, all of it reclaimable."""
    for rel in paths:
        index.orphans.append(Orphan(OrphanKind.store_unused, rel, reason, (rel,)))
        index.mark(rel, Owner(Category.orphans, rel))


def count_containers(index: Index, counts: Mapping[ImageID, int]) -> None:
    """Each image's number of containers, as `docker images` and `system df` count them."""
    for image_id, count in counts.items():
        view = index.images.get(image_id)
        if view is not None:
            index.images[image_id] = dataclasses.replace(view, containers=count)
