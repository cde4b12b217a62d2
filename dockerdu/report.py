"""The Report: plain data that every renderer prints, and nothing else."""

from __future__ import annotations

from dataclasses import field

from .model import Cleaner, OrphanKind, ProblemKind
from .records import record

SCHEMA = "dockerdu.report/1"


@record
class LayerReport:
    """One layer of an image, base first."""

    chain_id: str
    diff_id: str
    cache_id: str
    size: int | None
    """layerdb `size`: Docker's figure for this layer alone."""
    disk: int | None
    """Allocated bytes of overlay2/<cache-id> and its l/ link."""
    files: int | None


@record
class ImageReport:
    """One image as `docker images` lists it."""

    id: str
    tags: tuple[str, ...]
    digests: tuple[str, ...]
    created: str | None
    size: int
    shared_size: int
    unique_size: int
    containers: int
    disk: int | None
    unique_disk: int | None
    """Allocated bytes of the layers no other image or container uses."""
    layers: tuple[LayerReport, ...]


@record
class ContainerReport:
    """One container Docker loads."""

    id: str
    name: str
    image_id: str | None
    image: str
    state: str
    rw_size: int | None
    """SizeRw: Docker's size of the writable layer's diff."""
    rw_disk: int
    """Allocated bytes of the writable and init dirs and their l/ links."""
    log_size: int
    log_disk: int
    log_driver: str
    volumes: tuple[str, ...]


@record
class VolumeReport:
    """One volume of the local driver."""

    name: str
    size: int | None
    """Docker's size of _data; None where Docker reports none (driver options, no _data)."""
    disk: int
    containers: tuple[str, ...]
    anonymous: bool


@record
class BuildCacheItem:
    """One BuildKit record."""

    id: str
    record_type: str
    description: str
    size: int | None
    snapshot: str | None
    last_used: str | None


@record
class BuildCacheReport:
    """BuildKit's cache: its dirs in overlay2/ and its records."""

    disk: int
    size: int | None
    """Sum of the records' sizes, when every one is known."""
    records: tuple[BuildCacheItem, ...]


@record
class OrphanReport:
    """A proven leftover and the bytes it holds."""

    kind: OrphanKind
    path: str
    disk: int
    reason: str
    paths: tuple[str, ...]
    cleaned_by: Cleaner
    """Who removes it without dockerdu."""


@record
class ProblemReport:
    """An inconsistency or unreadable piece; nothing to reclaim."""

    kind: ProblemKind
    path: str
    reason: str


@record
class OtherReport:
    """Bytes under the root that belong to none of the named categories."""

    name: str
    disk: int


@record
class Reclaimable:
    """What could go, as Docker figures it (`size`) and in allocated bytes (`disk`)."""

    size: int | None
    disk: int | None


@record
class Totals:
    """Allocated bytes per category; they add up to root_disk. None: not measured (quick mode)."""

    images: int | None
    containers: int | None
    logs: int | None
    volumes: int | None
    build_cache: int | None
    orphans: int | None
    metadata: int | None
    other: int | None
    root_disk: int | None
    reclaimable: int | None
    image_content: int | None = 0
    """containerd store: content-store blobs (compressed layers, manifests, configs) of images."""


@record
class FileSystem:
    """The file system holding the root."""

    total: int
    used: int
    free: int
    percent: float


@record
class DockerInfo:
    """What is known of the Docker that wrote the root and of the daemon now."""

    daemon_running: bool
    daemon_pid: int | None
    engine_id: str | None
    """The engine ID in `engine-id` (Docker >= 23.0 writes it); None when absent or unreadable."""
    shared_size_rule: str
    layers_size: int
    """df's LayersSize: layers on the chain of a listed image."""
    size_rule: str = ""
    """containerd store: whose formulas image Size and LayersSize follow (they differ by Docker version)."""


@record
class RootReport:
    """One root the walk covered: Docker's data root, or the containerd root holding its images."""

    path: str
    role: str
    """`docker` or `containerd`."""
    disk: int | None
    """Allocated bytes under it, as `du -sx -B1` counts them; None: not measured (quick mode)."""


@record
class NamespaceReport:
    """Another client's namespace of the containerd Docker uses (`k8s.io`, `default`, ...)."""

    name: str
    images: tuple[str, ...]
    snapshots: int
    blobs: int
    disk: int
    """Allocated bytes of its snapshots and blobs that no Docker image, container or lease holds."""


@record
class Report:
    """Everything dockerdu found under one root."""

    root: str
    root_source: str
    store: str
    driver: str
    generated_at: str
    version: str
    docker: DockerInfo
    images: tuple[ImageReport, ...]
    containers: tuple[ContainerReport, ...]
    volumes: tuple[VolumeReport, ...]
    build_cache: BuildCacheReport
    orphans: tuple[OrphanReport, ...]
    problems: tuple[ProblemReport, ...]
    other: tuple[OtherReport, ...]
    totals: Totals
    reclaimable: dict[str, Reclaimable]
    filesystem: FileSystem | None
    incomplete: tuple[str, ...] = field(default=())
    """Figures computed from partial data, by name; empty when all are whole."""
    notes: tuple[str, ...] = field(default=())
    roots: tuple[RootReport, ...] = field(default=())
    containerd_root: str | None = None
    """containerd store: the containerd root holding Docker's images; None: not found or no such store."""
    containerd_root_source: str | None = None
    namespaces: tuple[NamespaceReport, ...] = field(default=())
    schema: str = SCHEMA
