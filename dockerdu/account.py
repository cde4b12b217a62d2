"""Build the Report from the index (Docker's records) and the measurement (the walk)."""

from __future__ import annotations

from collections.abc import Iterable

from .ids import ChainID, ContainerID
from .index import ImageView, Index, Owner
from .measure import Measurement
from .report import (
    BuildCacheItem,
    BuildCacheReport,
    ContainerReport,
    DockerInfo,
    FileSystem,
    ImageReport,
    LayerReport,
    OrphanReport,
    OtherReport,
    ProblemReport,
    Reclaimable,
    Report,
    Totals,
    VolumeReport,
)

ACTIVE_STATES = ("running", "paused", "restarting")


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


def _image_report(
    index: Index, m: Measurement, view: ImageView, refs: dict[ChainID, int], used: set[ChainID]
) -> ImageReport:
    layers: list[LayerReport] = []
    size = shared = 0
    disk: int | None = 0
    unique_disk: int | None = 0
    for c in view.chain:
        layer = index.layers[c]
        owner = index.layer_owner.get(c)
        ldisk = None
        if layer.cache_id in index.overlay2_dirs and owner is not None and owner.key == layer.cache_id:
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
        if refs.get(c, 0) > 1:
            shared += lsize
        if disk is not None:
            disk = None if ldisk is None else disk + ldisk
        if unique_disk is not None and ldisk is not None:
            others = sum(1 for v in index.images.values() if v.loaded and c in v.chain) > 1
            if not others and c not in used:
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
    used: set[ChainID] = set()
    for view in index.containers.values():
        top = view.mount.parent if view.mount is not None else None
        while top is not None and top in index.layers and top not in used:
            used.add(top)
            top = index.layers[top].parent
    return used


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
) -> Report:
    """Join Docker's records with the walk's figures into a Report."""
    all_images = engine_id
    refs = _layer_refs(index, all_images)
    used = _container_chains(index)
    listed = [v for v in index.images.values() if v.listed]
    images = sorted(
        (_image_report(index, m, v, refs, used) for v in listed),
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
                disk=_disk(m, Owner("volumes", name)),
                containers=tuple(
                    index.containers[c].record.name or c[:12]
                    for c in index.volume_users.get(name, ())
                    if c in index.containers
                ),
                anonymous=len(name) == 64 and all(ch in "0123456789abcdef" for ch in name),
            )
            for name, v in index.volumes.volumes.items()
        ),
        key=lambda r: (-r.disk, r.name),
    )
    category: dict[str, int | None] = {}
    for owner, tally in m.tallies.items():
        category[owner.category] = (category.get(owner.category) or 0) + tally.disk
    for owner in m.skipped:
        category[owner.category] = None
    orphans = sorted(
        (
            OrphanReport(o.kind, o.path, _disk(m, Owner("orphans", o.path)), o.reason, o.paths, o.cleaned_by)
            for o in index.orphans
        ),
        key=lambda r: (-r.disk, r.kind, r.path),
    )
    other = sorted(
        (OtherReport(o.key, t.disk) for o, t in m.tallies.items() if o.category == "other"),
        key=lambda r: (-r.disk, r.name),
    )
    build_cache = _build_cache(index, m, category.get("build_cache") or 0)
    reclaimable = _reclaimable(index, m, images, containers, volumes, layers_size, build_cache, orphans, used)
    totals = Totals(
        images=category.get("images", 0),
        containers=category.get("containers", 0),
        logs=category.get("logs", 0),
        volumes=category.get("volumes", 0),
        build_cache=category.get("build_cache", 0),
        orphans=category.get("orphans", 0),
        metadata=category.get("metadata", 0),
        other=category.get("other", 0),
        root_disk=None if m.skipped else m.root_disk,
        reclaimable=_sum(r.disk for r in reclaimable.values()),
        image_content=category.get("image_content", 0),
    )
    problems = sorted(
        {ProblemReport(p.kind, p.path, p.reason) for p in (*index.problems, *m.problems)},
        key=lambda p: (p.kind, p.path),
    )
    unknown_sizes = {c for c, layer in index.layers.items() if layer.size is None}
    incomplete = sorted(
        {f"{o.category}:{o.key}" if o.key else o.category for o, t in m.tallies.items() if t.incomplete}
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
            engine_id=engine_id,
            shared_size_rule=index.shared_rule,
            layers_size=layers_size,
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
    )


def _container_report(index: Index, m: Measurement, cid: ContainerID) -> ContainerReport:
    view = index.containers[cid]
    r = view.record
    rw_size: int | None = None
    if view.mount is not None and f"rw:{cid}" in m.sizes:
        rw_size = m.sizes[f"rw:{cid}"]
    elif view.mount is not None and index.rw_size_walkable:
        rw_size = 0 if _disk(m, Owner("containers", cid)) else None
    if cid in index.naive_rw_sizes:
        rw_size = index.naive_rw_sizes[cid]
    if index.figures is not None:
        rw_size = index.figures.rw_sizes.get(cid)
    return ContainerReport(
        id=cid,
        name=r.name,
        image_id=r.image_id,
        image=r.image_ref,
        state=r.state,
        rw_size=rw_size,
        rw_disk=_disk(m, Owner("containers", cid)),
        log_size=m.sizes.get(f"log:{cid}", 0),
        log_disk=_disk(m, Owner("logs", cid)),
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
    # Docker's CLI (<= 28): LayersSize minus what images in use hold alone.
    image_size = layers_size - sum(i.size - i.shared_size for i in images if i.containers > 0)
    image_disk = _sum(
        _known_disk(m, owner)
        for c, owner in index.layer_owner.items()
        if owner.category == "images" and c not in used
    )
    idle = [c for c in containers if c.state not in ACTIVE_STATES]
    unused = [v for v in volumes if not v.containers]
    return {
        "images": Reclaimable(image_size, image_disk),
        "containers": Reclaimable(_sum(c.rw_size for c in idle), sum(c.rw_disk + c.log_disk for c in idle)),
        "volumes": Reclaimable(_sum(v.size for v in unused), sum(v.disk for v in unused)),
        "build_cache": Reclaimable(build_cache.size, build_cache.disk),
        "orphans": Reclaimable(None, sum(o.disk for o in orphans)),
    }
