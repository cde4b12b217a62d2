"""Build the Report from the index (Docker's records) and the measurement (the walk)."""

from __future__ import annotations

from collections.abc import Iterable

from .chain import ancestors
from .ids import ChainID, ContainerID, ImageID
from .index import ImageView, Index, Owner
from .measure import Measurement
from .model import Category, ProblemKind
from .records import record
from .refs import shown_image
from .report import (
    BuildCacheItem,
    BuildCacheReport,
    ContainerReport,
    DockerInfo,
    FileSystem,
    ImageReport,
    LayerReport,
    NamespaceReport,
    OrphanReport,
    OtherReport,
    ProblemReport,
    Reclaimable,
    Report,
    RootReport,
    Totals,
    VolumeReport,
)

ACTIVE_STATES = ("running", "paused", "restarting")


RECLAIMABLE = (Category.images, Category.containers, Category.volumes, Category.build_cache, Category.orphans)


def _below_unreadable(index: Index, m: Measurement) -> set[Owner]:
    """Owners with a path under a dir the walk could not read: it never reached them, so their
    figures (and their category's) are partial, though no tally of theirs saw the error."""
    bad = {p.path for p in m.problems if p.kind == ProblemKind.path_unreadable}
    if not bad:
        return set()
    owned = [(rel, mark.owner) for rel, mark in index.marks.items() if mark.owner is not None]
    # The layer dirs Docker's records name, whether or not the walk could list them.
    owned += [(f"{index.layer_root}/{name}", owner) for name, owner in index.dir_owner.items()]
    out: set[Owner] = set()
    for rel, owner in owned:
        parts = rel.split("/")
        if any("/".join(parts[:i]) in bad for i in range(1, len(parts) + 1)):
            out.add(owner)
    return out


def _disk(m: Measurement, owner: Owner) -> int:
    t = m.tallies.get(owner)
    return t.disk if t is not None else 0


def _known_disk(m: Measurement, owner: Owner) -> int | None:
    """An owner's disk, or None when its dirs were not walked (quick mode)."""
    return None if owner in m.skipped else _disk(m, owner)


def _layer_refs(index: Index, all_images: bool) -> dict[ChainID, int]:
    """How many images reference each chain ID, as Docker's Images() counts for SharedSize."""
    refs: dict[ChainID, int] = {}
    for view in index.images.values():
        if view.loaded and (view.listed or all_images):
            for c in view.chain:
                refs[c] = refs.get(c, 0) + 1
    return refs


@record
class Sharing:
    """Who holds each layer: the one accounting of sharing, for `report` and `image` alike."""

    refs: dict[ChainID, int]
    """Images Docker counts for SharedSize (its version's rule) that hold each layer."""
    holders: dict[ChainID, int]
    """Loaded images, of any kind, that hold each layer."""
    used: set[ChainID]
    """Layers some container's writable layer stands on."""
    build_cache: set[ChainID]
    """Layers BuildKit's records hold (exported results and FROM bases), with their ancestors."""
    all_images: bool
    """Docker's >= 23.0 SharedSize rule: every loaded image counts, not only listed ones."""


def sharing(index: Index, all_images: bool) -> Sharing:
    """Count who holds each layer; `all_images` is Docker's >= 23.0 SharedSize rule."""
    return Sharing(
        refs=_layer_refs(index, all_images),
        holders=_layer_refs(index, True),
        used=_container_chains(index),
        build_cache=_build_cache_layers(index),
        all_images=all_images,
    )


def _build_cache_layers(index: Index) -> set[ChainID]:
    dirs = {r.snapshot_id for r in index.buildkit.records if r.snapshot_id}
    tops: list[ChainID | None] = [
        ChainID(r.chain_id) for r in index.buildkit.records if r.chain_id is not None
    ]
    tops += [c for c, layer in index.layers.items() if layer.cache_id in dirs]
    return ancestors(index.layers, tops)


@record
class ImageRemoval:
    """What `docker rmi` of one image alone deletes on this host."""

    removed_with: tuple[ImageID, ...]
    """Untagged parent images (classic builder) it removes along with the image."""
    freed: frozenset[ChainID]
    """The image's layers nothing else holds: no other image, container, layer or build-cache record."""


def removal(index: Index, image_id: ImageID, held: Sharing) -> ImageRemoval:
    """The images and layers `docker rmi` of `image_id` alone would delete."""
    loaded = {i: v for i, v in index.images.items() if v.loaded}
    children: dict[ImageID, set[ImageID]] = {}
    for i, v in loaded.items():
        if v.record.parent is not None:
            children.setdefault(v.record.parent, set()).add(i)
    gone = {image_id}
    with_it: list[ImageID] = []
    current = image_id
    while True:
        parent = loaded[current].record.parent
        if parent is None or parent not in loaded or parent in gone:
            break
        pv = loaded[parent]
        if pv.tags or pv.digests or pv.containers or children.get(parent, set()) - gone:
            break
        gone.add(parent)
        with_it.append(parent)
        current = parent
    chain = set(index.images[image_id].chain)
    kept = ancestors(
        index.layers,
        [
            *(v.chain[-1] for i, v in loaded.items() if i not in gone and v.chain),
            *(v.mount.parent for v in index.containers.values() if v.mount is not None),
            *(c for c in index.layers if c not in chain),
            *held.build_cache,
        ],
    )
    return ImageRemoval(tuple(with_it), frozenset(chain - kept))


def image_report(index: Index, m: Measurement, view: ImageView, held: Sharing) -> ImageReport:
    """An image's sizes, sharing and disk, from Docker's records and the walk's figures."""
    refs, used = held.refs, held.used
    # An image Docker does not count (unlisted, before 23.0) still holds its own layers.
    own = 0 if view.listed or held.all_images else 1
    layers: list[LayerReport] = []
    size = shared = 0
    disk: int | None = 0
    unique_disk: int | None = 0
    for c in view.chain:
        layer = index.layers[c]
        owner = index.layer_owner.get(c)
        ldisk = None
        if (
            layer.cache_id in index.layer_dirs
            and owner is not None
            and owner.key == layer.cache_id
            and layer.cache_id not in index.data_outside
        ):
            ldisk = _known_disk(m, owner)
        layers.append(
            LayerReport(
                chain_id=c,
                diff_id=layer.diff_id,
                cache_id=layer.cache_id,
                size=layer.size,
                disk=ldisk,
                files=m.files.get(f"layer:{layer.cache_id}"),
            )
        )
        lsize = layer.size or 0
        size += lsize
        if refs.get(c, 0) + own > 1:
            shared += lsize
        if disk is not None:
            disk = None if ldisk is None else disk + ldisk
        if unique_disk is not None and ldisk is not None:
            if held.holders.get(c, 0) <= 1 and c not in used:
                unique_disk += ldisk
    if index.figures is not None and view.record.id in index.figures.image_sizes:
        size, shared = index.figures.image_sizes[view.record.id]
    return ImageReport(
        id=view.record.id,
        tags=view.tags,
        digests=view.digests,
        created=view.record.created,
        size=size,
        shared_size=shared,
        unique_size=size - shared,
        containers=view.containers,
        disk=disk,
        unique_disk=unique_disk if disk is not None else None,
        layers=tuple(layers),
    )


def _container_chains(index: Index) -> set[ChainID]:
    if index.figures is not None:
        return set(index.figures.used_layers)
    tops = [v.mount.parent for v in index.containers.values() if v.mount is not None]
    # The layers under the mount of a container that could not be read stay in use too.
    return ancestors(index.layers, [*tops, *index.held_parents])


def account(
    index: Index,
    m: Measurement,
    *,
    root: str,
    root_source: str,
    generated_at: str,
    version: str,
    daemon_pid: int | None,
    engine_id: bool,
    filesystem: FileSystem | None,
    engine: str | None = None,
    roots: tuple[RootReport, ...] = (),
) -> Report:
    """Join Docker's records with the walk's figures into a Report."""
    held = sharing(index, engine_id)
    used = held.used
    listed = [v for v in index.images.values() if v.listed]
    images = sorted(
        (image_report(index, m, v, held) for v in listed),
        key=lambda r: (-(r.disk or 0), -r.size, r.id),
    )
    listed_refs = _layer_refs(index, False)
    layers_size = sum(layer.size or 0 for c, layer in index.layers.items() if c in listed_refs)
    if index.figures is not None:
        layers_size = index.figures.layers_size

    containers = sorted(
        (_container_report(index, m, cid) for cid in index.containers),
        key=lambda r: (-r.rw_disk, r.name),
    )
    volumes = sorted(
        (
            VolumeReport(
                name=name,
                size=m.sizes.get(f"vol:{name}", 0) if v.has_data and not v.has_options else None,
                disk=_disk(m, Owner(Category.volumes, name)),
                containers=tuple(
                    index.containers[c].record.name or c[:12]
                    for c in index.volume_users.get(name, ())
                    if c in index.containers
                ),
                anonymous=v.anonymous,
            )
            for name, v in index.volumes.volumes.items()
        ),
        key=lambda r: (-r.disk, r.name),
    )
    category: dict[Category, int | None] = {}
    for owner, tally in m.tallies.items():
        category[owner.category] = (category.get(owner.category) or 0) + tally.disk
    for owner in m.skipped:
        category[owner.category] = None
    orphans = sorted(
        (
            OrphanReport(
                o.kind, o.path, _disk(m, Owner(Category.orphans, o.path)), o.reason, o.paths, o.cleaned_by
            )
            for o in index.orphans
        ),
        key=lambda r: (-r.disk, r.kind, r.path),
    )
    other = sorted(
        (OtherReport(o.key, t.disk) for o, t in m.tallies.items() if o.category == Category.other),
        key=lambda r: (-r.disk, r.name),
    )
    build_cache = _build_cache(index, m, category.get(Category.build_cache) or 0)
    reclaimable = _reclaimable(index, m, images, containers, volumes, layers_size, build_cache, orphans, used)
    totals = Totals(
        images=category.get(Category.images, 0),
        containers=category.get(Category.containers, 0),
        logs=category.get(Category.logs, 0),
        volumes=category.get(Category.volumes, 0),
        build_cache=category.get(Category.build_cache, 0),
        orphans=category.get(Category.orphans, 0),
        metadata=category.get(Category.metadata, 0),
        other=category.get(Category.other, 0),
        root_disk=None if m.skipped else m.root_disk,
        reclaimable=_sum(r.disk for r in reclaimable.values()),
        image_content=category.get(Category.image_content, 0),
    )
    where = index.containerd_root
    problems = sorted(
        {ProblemReport(p.kind, p.path, p.reason) for p in (*index.problems, *m.problems)},
        key=lambda p: (p.kind, p.path),
    )
    unknown_sizes = {c for c, layer in index.layers.items() if layer.size is None}
    unwalked = _below_unreadable(index, m)
    partial = {o for o, t in m.tallies.items() if t.incomplete} | unwalked
    incomplete = sorted(
        {f"{o.category}:{o.key}" if o.key else o.category for o in partial}
        | {o.category for o in unwalked if o.category != Category.other}
        | {f"reclaimable.{o.category}" for o in unwalked if o.category in RECLAIMABLE}
        | {"images.size" for v in listed for c in v.chain if c in unknown_sizes}
        | ({"docker.layers_size", "reclaimable.images"} if unknown_sizes & set(listed_refs) else set())
        | index.incomplete
    )
    return Report(
        root=root,
        root_source=root_source,
        store=index.store or index.driver,
        driver=index.driver,
        generated_at=generated_at,
        version=version,
        docker=DockerInfo(
            daemon_running=daemon_pid is not None,
            daemon_pid=daemon_pid,
            engine_id=engine,
            shared_size_rule=index.shared_rule,
            layers_size=layers_size,
            size_rule=index.size_rule,
        ),
        images=tuple(images),
        containers=tuple(containers),
        volumes=tuple(volumes),
        build_cache=build_cache,
        orphans=tuple(orphans),
        problems=tuple(problems),
        other=tuple(other),
        totals=totals,
        reclaimable=reclaimable,
        filesystem=filesystem,
        incomplete=tuple(incomplete),
        notes=tuple(index.notes),
        roots=roots or (RootReport(root, "docker", None if m.skipped else m.root_disk),),
        containerd_root=str(where.path) if where is not None and where.path is not None else None,
        containerd_root_source=where.source if where is not None else None,
        namespaces=tuple(
            NamespaceReport(
                ns.name,
                ns.images,
                ns.snapshots,
                len(ns.blobs),
                _disk(m, Owner(Category.other, f"containerd namespace {ns.name}")),
            )
            for ns in sorted(index.namespaces.values(), key=lambda n: n.name)
        ),
    )


def _container_report(index: Index, m: Measurement, cid: ContainerID) -> ContainerReport:
    view = index.containers[cid]
    r = view.record
    rw_size: int | None = None
    if view.mount is not None and f"rw:{cid}" in m.sizes:
        rw_size = m.sizes[f"rw:{cid}"]
    elif view.mount is not None and index.rw_size_walkable:
        rw_size = 0 if _disk(m, Owner(Category.containers, cid)) else None
    if cid in index.naive_rw_sizes:
        rw_size = index.naive_rw_sizes[cid]
    if view.mount is not None and view.mount.mount_id in index.data_outside:
        rw_size = None  # its diff/ is a symlink, never followed
    if index.figures is not None:
        rw_size = index.figures.rw_sizes.get(cid)
    return ContainerReport(
        id=cid,
        name=r.name,
        image_id=r.image_id,
        image=shown_image(index, r.image_ref, r.image_id),
        state=r.state,
        rw_size=rw_size,
        rw_disk=_disk(m, Owner(Category.containers, cid)),
        log_size=m.sizes.get(f"log:{cid}", 0),
        log_disk=_disk(m, Owner(Category.logs, cid)),
        log_driver=r.log_driver,
        volumes=r.volumes,
    )


def _build_cache(index: Index, m: Measurement, disk: int) -> BuildCacheReport:
    records = index.buildkit.records
    # A record built since Docker last stored its size: Docker would measure the dir as the walk did.
    sizes = [
        r.size if r.size is not None else m.sizes.get(f"layer:{r.snapshot_id}") if r.snapshot_id else None
        for r in records
    ]
    return BuildCacheReport(
        disk=disk,
        size=sum(s for s in sizes if s is not None) if all(s is not None for s in sizes) else None,
        records=tuple(
            BuildCacheItem(r.id, r.record_type, r.description, size, r.snapshot_id, r.last_used)
            for r, size in zip(records, sizes, strict=True)
        ),
    )


def _sum(values: Iterable[int | None]) -> int | None:
    total = 0
    for v in values:
        if v is None:
            return None
        total += v
    return total


def _reclaimable(
    index: Index,
    m: Measurement,
    images: list[ImageReport],
    containers: list[ContainerReport],
    volumes: list[VolumeReport],
    layers_size: int,
    build_cache: BuildCacheReport,
    orphans: list[OrphanReport],
    used: set[ChainID],
) -> dict[str, Reclaimable]:
    # Docker's CLI (<= 28): LayersSize minus what images in use hold alone. An image under the
    # layer of a container that could not be read counts as in use: its layers stay on disk.
    held = {v.record.id for v in index.images.values() if v.chain and v.chain[-1] in index.held_parents}
    image_size = layers_size - sum(i.size - i.shared_size for i in images if i.containers > 0 or i.id in held)
    image_disk = _sum(
        _known_disk(m, owner)
        for c, owner in index.layer_owner.items()
        if owner.category == Category.images and c not in used
    )
    idle = [c for c in containers if c.state not in ACTIVE_STATES]
    unused = [
        v
        for v in volumes
        if not v.containers and index.held_volumes is not None and v.name not in index.held_volumes
    ]
    return {
        "images": Reclaimable(image_size, image_disk),
        "containers": Reclaimable(_sum(c.rw_size for c in idle), sum(c.rw_disk + c.log_disk for c in idle)),
        "volumes": Reclaimable(_sum(v.size for v in unused), sum(v.disk for v in unused)),
        "build_cache": Reclaimable(build_cache.size, build_cache.disk),
        "orphans": Reclaimable(None, sum(o.disk for o in orphans)),
    }
