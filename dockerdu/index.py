"""The index: who owns each path under the root(s), and the joined objects, whatever the store.

Each store (`stores/graphdriver`, `stores/containerd`) reads its records and joins them
into this one model; measure, account, render and `which` read only this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from .ids import ChainID, ContainerID, ImageID
from .model import Category, Orphan, Problem
from .readers.buildkit import BuildCacheScan
from .readers.containers import ContainerRecord
from .readers.imagedb import ImageRecord
from .readers.layerdb import LayerRecord, MountRecord
from .readers.volumes import VolumesScan
from .records import record as frozen_record
from .stores.graphdriver.drivers import driver as driver_row

if TYPE_CHECKING:
    from .ctrdroot import ContainerdRoot
    from .layout import Layout
    from .readers.containerd import Namespace

# When a daemon is running, anything unreferenced that changed this recently may be
# half-way through a pull, build, create or remove: in flight, never an orphan.
IN_FLIGHT_SECONDS = 3600.0


class Owner(NamedTuple):
    """Who a path's bytes are charged to: a report category and an object key in it."""

    category: Category
    key: str


METADATA = Owner(Category.metadata, "")
IN_FLIGHT = Owner(Category.other, "in flight (daemon running)")
UNATTRIBUTED = Owner(Category.other, "unattributed (references unreadable)")
BUILDKIT_STALE = Owner(Category.other, "BuildKit snapshots with no cache record")
SHARED_BY_ORPHANS = Owner(Category.other, "layers only several orphaned container layers hold")
IMAGE_FIGURES = ("images", "docker.layers_size", "reclaimable.images")
"""What an unreadable image config, tag list or layer leaves partial."""
CONTAINER_FIGURES = ("containers", "images.containers", "volumes.containers", "reclaimable.containers",
                     "reclaimable.volumes", "reclaimable.images")  # fmt: skip
"""What an unusable container config leaves partial: who exists, uses which image and volume."""


class Mark(NamedTuple):
    """What the walk does on reaching a path: charge a new owner, start a Docker size area."""

    owner: Owner | None
    size_key: str | None


@frozen_record
class ImageView:
    """An image joined with its layers and references."""

    record: ImageRecord
    chain: tuple[ChainID, ...]
    tags: tuple[str, ...]
    digests: tuple[str, ...]
    loaded: bool
    """Every layer of its chain is in layerdb: Docker loads it."""
    listed: bool
    """`docker images` shows it (tagged, or untagged with no children)."""
    containers: int


@frozen_record
class ContainerView:
    """A container with a usable config, joined with its layerdb mount."""

    record: ContainerRecord
    mount: MountRecord | None


@frozen_record
class StoreFigures:
    """Docker's figures where a store computes them its own way (the containerd store).

    The graphdriver store leaves this None: account derives its figures from layerdb.
    """

    image_sizes: dict[ImageID, tuple[int, int]]
    """Image ID -> (Size, SharedSize) as `GET /system/df` reports them."""
    rw_sizes: dict[ContainerID, int]
    """Container ID -> SizeRw."""
    layers_size: int
    """df's LayersSize."""
    used_layers: frozenset[ChainID]
    """Layer keys under some container's writable layer."""


@dataclass
class Index:
    """The joined model of a root, and the marks that tell the walk who owns what."""

    layout: Layout
    """The roots, the store and the driver: where each mark's path lies."""
    images: dict[ImageID, ImageView]
    layers: dict[ChainID, LayerRecord]
    layer_owner: dict[ChainID, Owner]
    containers: dict[ContainerID, ContainerView]
    volume_users: dict[str, tuple[ContainerID, ...]]
    volumes: VolumesScan
    buildkit: BuildCacheScan
    shared_rule: str
    orphans: list[Orphan] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    marks: dict[str, Mark] = field(default_factory=dict)
    dir_owner: dict[str, Owner] = field(default_factory=dict)
    """Layer dir name (under the driver's layer dir) -> owner."""
    notes: list[str] = field(default_factory=list)
    layer_dirs: frozenset[str] = frozenset()
    """Names of the dirs present under the driver's layer dir (overlay2/, or the snapshots)."""
    incomplete: set[str] = field(default_factory=set)
    """Figures the damaged metadata leaves partial, by their `incomplete[]` names."""
    figures: StoreFigures | None = None
    naive_rw_sizes: dict[ContainerID, int] = field(default_factory=dict)
    """Container ID -> SizeRw as the naive diff makes it (vfs, fuse-overlayfs), where it was read."""
    data_outside: set[str] = field(default_factory=set)
    """Layer dirs whose `diff` is a symlink: never followed, so their figures are not measured."""
    held_parents: set[ChainID] = field(default_factory=set)
    """Parents of the layerdb mounts of containers that could not be read (or have no config):
    Docker's layer store keeps those layers, so none of them is reclaimable."""
    held_volumes: frozenset[str] | None = frozenset()
    """Volumes such containers may use (None: any may be), so none of them is reclaimable."""
    image_configs: dict[ImageID, tuple[str, str]] = field(default_factory=dict)
    """containerd store: image ID -> (path of its config blob, the config's digest)."""
    image_layers: dict[ImageID, frozenset[ChainID]] = field(default_factory=dict)
    """containerd store: image ID -> the chain IDs of its diff IDs (its chain also holds the
    `-init` snapshots classic builds commit over)."""
    size_rule: str = ""
    """containerd store: which Docker version's formulas for image Size and LayersSize were followed."""
    containerd_root: ContainerdRoot | None = None
    """containerd store: where its data is and how that was decided."""
    namespaces: Mapping[str, Namespace] = field(default_factory=dict)
    """containerd store: the other namespaces of the same containerd (not Docker's)."""

    @property
    def driver(self) -> str:
        """The graphdriver, or the containerd snapshotter."""
        return self.layout.driver

    @property
    def store(self) -> str:
        """Which image store the daemon uses: the graphdriver's name, or `containerd`."""
        return self.layout.store

    @property
    def layer_root(self) -> str:
        """The dir of the layer dirs (`overlay2`, `vfs/dir`, a snapshotter's `snapshots`), as marked."""
        return self.layout.layer_root

    @property
    def rw_size_walkable(self) -> bool:
        """True when Docker's SizeRw of a container is a walk of its writable layer's diff/.

        overlay2's DiffSize walks diff/. vfs and fuse-overlayfs use the naive diff
        (archive.ChangesDirs of the mounted layer against its parent, then ChangesSize):
        a file copied up but left unchanged (opened for writing, nothing written) is in
        diff/ yet not in Docker's figure, so a walk cannot give it. `naive_rw_sizes`
        holds that figure, read by comparing the container's tree with its parent's.
        """
        return not driver_row(self.driver).naive_diff

    def mark(self, relpath: str, owner: Owner | None = None, size_key: str | None = None) -> None:
        """Charge `relpath` (and below) to `owner`; count Docker's size of it under `size_key`."""
        self.marks[relpath] = Mark(owner, size_key)

    def parents(self) -> frozenset[str]:
        """Every proper ancestor of a marked path ("" is the root): where the walk must look."""
        return Index.parents_of(self.marks)

    @staticmethod
    def parents_of(marks: Iterable[str]) -> frozenset[str]:
        """Every proper ancestor of a path of `marks` ("" is the root)."""
        out: set[str] = {""}
        for rel in marks:
            parts = rel.split("/")
            for i in range(1, len(parts)):
                out.add("/".join(parts[:i]))
        return frozenset(out)

    def owner_of(self, relpath: str) -> Owner:
        """The owner of any root-relative path: its deepest marked ancestor's."""
        lead = "/" if relpath.startswith("/") else ""  # under a system containerd's root
        parts = relpath.strip("/").split("/")
        for i in range(len(parts), 0, -1):
            mark = self.marks.get(lead + "/".join(parts[:i]))
            if mark is not None and mark.owner is not None:
                return mark.owner
        return METADATA
