"""The graphdriver store's joins, in Docker's own terms, into the Index.

image -> diff IDs -> chain IDs -> layerdb -> cache IDs -> layer dirs;
container -> layerdb mount -> mount-id / init-id dirs; l/ links -> dirs;
volume -> containers; BuildKit record -> dir. Anything nothing references is an
orphan only when every source that could reference it was read in full.
"""

from __future__ import annotations

from collections.abc import Iterable

from ... import chain
from ... import index as model
from ...chain import ancestry, chain_ids
from ...ids import ChainID, ContainerID, ImageID, is_buildkit_id
from ...index import (
    BUILDKIT_STALE,
    CONTAINER_FIGURES,
    IMAGE_FIGURES,
    IN_FLIGHT,
    METADATA,
    SHARED_BY_ORPHANS,
    UNATTRIBUTED,
    ContainerView,
    ImageView,
    Index,
    Owner,
)
from ...layout import graphdriver_layout
from ...model import Category, Orphan, OrphanKind, Problem, ProblemKind
from ...readers.buildkit import BuildCacheScan
from ...readers.containers import ContainersScan
from ...readers.imagedb import ImageDBScan, References
from ...readers.layerdb import LayerDBScan
from ...readers.layerdirs import LayerDirScan
from ...readers.volumes import VolumesScan
from ...records import record as frozen_record
from .. import common
from .drivers import driver as driver_row


@frozen_record
class Scans:
    """Everything the readers produced for one root."""

    driver: str
    references: References
    imagedb: ImageDBScan
    layerdb: LayerDBScan
    layer_dirs: LayerDirScan
    containers: ContainersScan
    volumes: VolumesScan
    buildkit: BuildCacheScan
    engine_id: bool
    top_entries: tuple[str, ...]
    image_drivers: tuple[str, ...]
    problems: tuple[Problem, ...] = ()
    root: str = ""
    """The Docker root they were read from."""


def build_index(scans: Scans, now: float, daemon_running: bool) -> Index:
    """Join the readers' records and decide the owner of every path the walk will meet."""
    store = f"image/{scans.driver}"
    layerdb = scans.layerdb
    row = driver_row(scans.driver)
    index = Index(
        layout=graphdriver_layout(scans.root, scans.driver, row.layer_root, row.content),
        images={},
        layers=dict(layerdb.layers),
        layer_owner={},
        containers={},
        volume_users={},
        volumes=scans.volumes,
        buildkit=scans.buildkit,
        shared_rule="all images (Docker >= 23.0)" if scans.engine_id else "listed images (Docker < 23.0)",
        layer_dirs=frozenset(scans.layer_dirs.dirs),
    )
    index.problems.extend(scans.problems)
    common.mark_top_entries(index, scans.top_entries)
    for driver in scans.image_drivers:
        if driver != scans.driver:
            index.mark(f"image/{driver}", Owner(Category.other, f"image/{driver} (another storage driver)"))

    _join_images(index, scans, store)
    _check_parents(index, scans, store)
    _join_containers(index, scans, store)
    index.held_volumes = scans.containers.unusable_volumes
    if index.held_volumes is None:
        index.incomplete.add("reclaimable.volumes")
    _join_layers(index, scans, store, now, daemon_running)
    _mark_layer_dirs_and_links(index, scans, now, daemon_running)
    common.mark_volumes(index, scans.volumes)
    index.mark("buildkit/content", Owner(Category.build_cache, "buildkit/content"))
    return index


def _join_images(index: Index, scans: Scans, store: str) -> None:
    layers = scans.layerdb.layers
    unreadable = scans.layerdb.unreadable_layers
    records = scans.imagedb.images
    imagedb = scans.imagedb
    if not (imagedb.readable and scans.references.readable) or imagedb.unreadable or imagedb.bad_parents:
        # Which images exist, are tagged or are listed, and so every figure that sums over them.
        index.incomplete.update(IMAGE_FIGURES)
    loaded: dict[ImageID, tuple[ChainID, ...]] = {}
    for image_id, record in records.items():
        chain = chain_ids(record.diff_ids)
        missing = [c for c in chain if c not in layers]
        if missing:
            if any(c in unreadable for c in missing):
                index.incomplete.update(IMAGE_FIGURES)
            else:
                label = ", ".join(scans.references.tags.get(image_id, ())) or image_id[7:19]
                for c in missing:
                    index.problems.append(
                        Problem(
                            ProblemKind.image_layer_missing,
                            f"{store}/layerdb/sha256/{c[7:]}",
                            f"image {label} needs layer {chain.index(c) + 1} of {len(chain)}; "
                            "Docker no longer loads this image",
                        )
                    )
        else:
            loaded[image_id] = chain
        for i, c in enumerate(chain):
            layer = layers.get(c)
            if layer is not None and layer.diff_id != record.diff_ids[i]:
                index.problems.append(
                    Problem(
                        ProblemKind.layer_chain_mismatch,
                        f"{store}/layerdb/sha256/{c[7:]}/diff",
                        f"holds {layer.diff_id[:19]}… where image {image_id[7:19]} has "
                        f"{record.diff_ids[i][:19]}…",
                    )
                )
    children: dict[ImageID, int] = {}
    for image_id in loaded:
        parent = records[image_id].parent
        if parent is not None and parent in loaded:
            children[parent] = children.get(parent, 0) + 1
    for image_id, record in records.items():
        tags = scans.references.tags.get(image_id, ())
        digests = scans.references.digests.get(image_id, ())
        is_loaded = image_id in loaded
        index.images[image_id] = ImageView(
            record=record,
            chain=loaded.get(image_id, chain_ids(record.diff_ids)),
            tags=tags,
            digests=digests,
            loaded=is_loaded,
            listed=is_loaded and (bool(tags or digests) or not children.get(image_id)),
            containers=0,
        )


def _check_parents(index: Index, scans: Scans, store: str) -> None:
    """A chain ID is the hash of its parent's and its own diff: a `parent` that breaks it is damage."""
    layers = scans.layerdb.layers
    for chain_id, layer in layers.items():
        if chain.chain_id(layer.parent, layer.diff_id) != chain_id:
            index.problems.append(
                Problem(
                    ProblemKind.layer_chain_mismatch,
                    f"{store}/layerdb/sha256/{chain_id[7:]}/parent",
                    "its parent and diff do not hash to its chain ID: the layer stack is damaged",
                )
            )
            # Container layers stack on their parents: which layers containers use is unsure.
            index.incomplete.add("reclaimable.images")


def _join_containers(index: Index, scans: Scans, store: str) -> None:
    mounts = scans.layerdb.mounts
    counts: dict[ImageID, int] = {}
    users: dict[str, list[ContainerID]] = {}
    if not scans.containers.complete:
        index.incomplete.update(CONTAINER_FIGURES)
    for container_id, record in scans.containers.containers.items():
        mount = mounts.get(container_id)
        if mount is None and container_id not in scans.layerdb.unreadable_mounts:
            continue  # no layer: an orphaned container dir, marked below
        index.containers[container_id] = ContainerView(record, mount)
        if mount is None:
            # Its layerdb mount is unreadable: its writable layer is not found, so neither measured.
            index.incomplete.update((f"containers:{container_id}", "reclaimable.containers"))
        if record.image_id is not None:
            counts[record.image_id] = counts.get(record.image_id, 0) + 1
        for volume in record.volumes:
            users.setdefault(volume, []).append(container_id)
    common.count_containers(index, counts)
    index.volume_users = {k: tuple(v) for k, v in users.items()}


def _join_layers(index: Index, scans: Scans, store: str, now: float, daemon_running: bool) -> None:
    layers = scans.layerdb.layers
    # While a daemon runs: a layer being registered (commit, build, pull) has no image yet,
    # and the parents of a layer being written or deleted are still held by it (an rmi
    # releases a chain top first, each layer after its child's dir is gone).
    flying: set[ChainID] = set()
    if daemon_running:
        for leftover in (*scans.layerdb.removing, *scans.layerdb.tmp):
            if now - leftover.changed < model.IN_FLIGHT_SECONDS:
                flying.update(ancestry(layers, leftover.parent))
    reached: set[ChainID] = set()
    for view in index.images.values():
        reached.update(c for c in view.chain if c in layers)
        for c in view.chain:
            reached.update(ancestry(layers, c))
    for container in index.containers.values():
        if container.mount is not None:
            reached.update(ancestry(layers, container.mount.parent))
    for container_id in scans.containers.unusable:
        # An unreadable config may still be a container Docker would load: its image layers stay.
        mount = scans.layerdb.mounts.get(container_id)
        if mount is not None:
            reached.update(ancestry(layers, mount.parent))
    for view in index.images.values():
        for c in view.chain:
            reached.update(ancestry(layers, c))
    images_complete = not scans.imagedb.unreadable and scans.imagedb.readable
    mounts_complete = not scans.layerdb.unreadable_mounts
    bk = scans.buildkit
    # Build cache is what a cache record holds: its layer and the layers below it.
    cached: set[ChainID] = set()
    for chain_id, layer in layers.items():
        if layer.cache_id in bk.record_dirs:
            cached.update(ancestry(layers, chain_id))
    for chain_id, layer in layers.items():
        if chain_id in reached:
            owner = Owner(Category.images, layer.cache_id)
        elif chain_id in cached:
            owner = Owner(Category.build_cache, layer.cache_id)
        elif layer.cache_id in bk.snapshot_dirs or is_buildkit_id(layer.cache_id):
            # Named in snapshots.db with no record (a failed `docker builder prune`):
            # Docker counts it nowhere, and BuildKit's databases still name it.
            owner = BUILDKIT_STALE
        elif daemon_running and (
            chain_id in flying
            or now - layer.changed < model.IN_FLIGHT_SECONDS
            or _recent(scans.layer_dirs, (layer.cache_id,), now)
        ):
            owner = IN_FLIGHT
            index.mark(f"{store}/layerdb/sha256/{chain_id[7:]}", owner)
        elif images_complete and mounts_complete:
            rel = f"{store}/layerdb/sha256/{chain_id[7:]}"
            owner = Owner(Category.orphans, rel)
            index.orphans.append(
                Orphan(
                    OrphanKind.layer_unreferenced,
                    rel,
                    "layer reached by no image and no container",
                    (rel, f"{index.layer_root}/{layer.cache_id}"),
                )
            )
            index.mark(rel, owner)
        else:
            owner = UNATTRIBUTED
        index.layer_owner[chain_id] = owner
        index.dir_owner[layer.cache_id] = owner
    if not (images_complete and mounts_complete):
        index.problems.append(
            Problem(
                ProblemKind.references_incomplete,
                f"{store}",
                "some image configs or container mounts could not be read, so unreferenced "
                "layers are not called orphans",
            )
        )


def _mark_layer_dirs_and_links(index: Index, scans: Scans, now: float, daemon_running: bool) -> None:
    _mark_container_layers(index, scans, now, daemon_running)
    _mark_container_dirs(index, scans, now, daemon_running)
    _mark_leftovers(index, scans, now, daemon_running)
    for name in scans.buildkit.snapshot_dirs:
        held = name in scans.buildkit.record_dirs
        index.dir_owner.setdefault(name, Owner(Category.build_cache, name) if held else BUILDKIT_STALE)
    _mark_layer_dirs(index, scans, now, daemon_running)
    removing = _being_removed(index, scans, now, daemon_running)
    _check_missing_dirs(index, scans, removing)
    _mark_links(index, scans.layer_dirs, removing)
    _check_link_files(index, scans, removing)


def _mark_container_layers(index: Index, scans: Scans, now: float, daemon_running: bool) -> None:
    """Writable and init dirs: a loaded container's, an unusable one's, or orphaned."""
    store = f"image/{scans.driver}"
    for container_id, mount in scans.layerdb.mounts.items():
        dirs = [mount.mount_id] + ([mount.init_id] if mount.init_id else [])
        mount_rel = f"{store}/layerdb/mounts/{container_id}"
        owner: Owner
        if container_id in index.containers:
            owner = Owner(Category.containers, container_id)
            if index.rw_size_walkable:
                index.mark(_diff_of(index, mount.mount_id), size_key=f"rw:{container_id}")
        elif container_id in scans.containers.unusable:
            owner = UNATTRIBUTED
            if mount.parent is not None:
                index.held_parents.add(mount.parent)
        elif container_id in scans.containers.no_config:
            if mount.parent is not None:
                index.held_parents.add(mount.parent)
            # Part of that container dir's orphan (or in flight with it), marked below.
            changed = scans.containers.mtimes.get(container_id, 0.0)
            in_flight = daemon_running and now - changed < model.IN_FLIGHT_SECONDS
            owner = IN_FLIGHT if in_flight else Owner(Category.orphans, f"containers/{container_id}")
        elif daemon_running and (
            now - mount.changed < model.IN_FLIGHT_SECONDS
            or _recent(scans.layer_dirs, dirs, now)
            or any(d not in scans.layer_dirs.dirs for d in dirs)
        ):
            # Being created (the mount is written last), or removed: docker rm deletes the
            # dirs, then the mount, so a mount whose dirs are gone is a remove under way.
            owner = IN_FLIGHT
            index.mark(mount_rel, owner)
        elif scans.containers.readable:
            owner = Owner(Category.orphans, mount_rel)
            index.orphans.append(
                Orphan(
                    OrphanKind.container_layer_orphaned,
                    mount_rel,
                    "container layer whose container is gone",
                    (mount_rel, *(f"{index.layer_root}/{d}" for d in dirs)),
                )
            )
            index.mark(mount_rel, owner)
        else:
            owner = UNATTRIBUTED  # containers/ unreadable: whose it is is unknown
            if mount.parent is not None:
                index.held_parents.add(mount.parent)
        for dir_name in dirs:
            index.dir_owner[dir_name] = owner
    _claim_layers_of_orphaned_mounts(index, scans)


def _claim_layers_of_orphaned_mounts(index: Index, scans: Scans) -> None:
    """Layers only an orphaned container layer stacks on are part of that orphan, freed with it.

    Docker loads every layerdb mount and keeps its parent layers for it forever. A
    layer that several orphaned mounts hold, and nothing else, belongs to none of them
    alone: it is counted under `other`, never removed while one of them stays.
    """
    store = f"image/{scans.driver}"
    layer_rel = {c: f"{store}/layerdb/sha256/{c[7:]}" for c in index.layers}
    claims: dict[ChainID, list[str]] = {}
    for orphan in index.orphans:
        if orphan.kind != OrphanKind.container_layer_orphaned:
            continue
        mount = scans.layerdb.mounts[ContainerID(orphan.path.rsplit("/", 1)[1])]
        for c in ancestry(index.layers, mount.parent):
            if index.layer_owner.get(c) == Owner(Category.orphans, layer_rel[c]):
                claims.setdefault(c, []).append(orphan.path)
    if not claims:
        return
    extra: dict[str, list[str]] = {}
    dropped: set[str] = set()
    by_path = {o.path: o for o in index.orphans}
    for c, mounts in claims.items():
        rel = layer_rel[c]
        dropped.add(rel)
        owner = Owner(Category.orphans, mounts[0]) if len(mounts) == 1 else SHARED_BY_ORPHANS
        if len(mounts) == 1:
            extra.setdefault(mounts[0], []).extend(by_path[rel].paths)
        index.layer_owner[c] = owner
        index.dir_owner[index.layers[c].cache_id] = owner
        index.mark(rel, owner)
    index.orphans[:] = [
        Orphan(o.kind, o.path, o.reason, o.paths + tuple(extra.get(o.path, ())))
        for o in index.orphans
        if o.path not in dropped
    ]


def _mark_container_dirs(index: Index, scans: Scans, now: float, daemon_running: bool) -> None:
    """Logs of loaded containers; container dirs with no usable config or no layer."""
    store = f"image/{scans.driver}"
    containers = scans.containers
    known = {*containers.unusable, *containers.containers, *containers.no_config}
    for container_id in sorted(known - set(index.containers)):
        rel = f"containers/{container_id}"
        reason = containers.unusable.get(container_id, "container with no layer (layerdb mount gone)")
        if container_id in containers.no_config:
            reason = "container dir without config.v2.json: Docker never loads it, nor removes it"
        paths: tuple[str, ...] = (rel,)
        mount = scans.layerdb.mounts.get(container_id)
        if mount is not None:
            paths += (f"{store}/layerdb/mounts/{container_id}", f"{index.layer_root}/{mount.mount_id}")
            if mount.init_id:
                paths += (f"{index.layer_root}/{mount.init_id}",)
        if daemon_running and now - containers.mtimes.get(container_id, 0.0) < model.IN_FLIGHT_SECONDS:
            for p in paths:
                index.mark(p, IN_FLIGHT)
            continue
        if container_id in containers.unusable:
            # Its config is damaged, not proven gone: a problem (from the reader), never an orphan.
            for p in paths:
                index.mark(p, UNATTRIBUTED)
            continue
        owner = Owner(Category.orphans, rel)
        index.orphans.append(Orphan(OrphanKind.container_dir_orphaned, rel, reason, paths))
        for p in paths:
            index.mark(p, owner)
    for container_id, view in index.containers.items():
        common.mark_logs(index, container_id, view.record.log_files)


def _mark_leftovers(index: Index, scans: Scans, now: float, daemon_running: bool) -> None:
    """layerdb leftovers of interrupted layer writes (tmp/) and deletes (-removing), with their dirs.

    While a daemon runs, every layer it registers passes through tmp/write-set-* and every
    layer it deletes through a -removing name: one that changed recently is in flight.
    """
    store = f"image/{scans.driver}"
    layerdb = scans.layerdb
    for leftover, kind, sub, reason in (
        *((x, OrphanKind.layer_removing, "sha256", "layer delete interrupted") for x in layerdb.removing),
        *((x, OrphanKind.layerdb_tmp, "tmp", "layer write interrupted") for x in layerdb.tmp),
    ):
        rel = f"{store}/layerdb/{sub}/{leftover.name}"
        in_flight = daemon_running and now - leftover.changed < model.IN_FLIGHT_SECONDS
        owner = IN_FLIGHT if in_flight else Owner(Category.orphans, rel)
        paths: tuple[str, ...] = (rel,)
        cache_id = leftover.cache_id
        if cache_id and cache_id in scans.layer_dirs.dirs and cache_id not in index.dir_owner:
            index.dir_owner[cache_id] = owner
            paths += (f"{index.layer_root}/{cache_id}",)
        if not in_flight:
            index.orphans.append(Orphan(kind, rel, reason, paths))
        index.mark(rel, owner)


def _mark_layer_dirs(index: Index, scans: Scans, now: float, daemon_running: bool) -> None:
    """Every dir under overlay2/: its owner, or an orphan once every reference was read."""
    complete = scans.layerdb.complete and scans.buildkit.complete and scans.layer_dirs.readable
    if not scans.layer_dirs.readable:
        index.incomplete.add("orphans")  # its leftover dirs cannot be listed, so neither counted
    for name, layer_dir in scans.layer_dirs.dirs.items():
        owner = index.dir_owner.get(name)
        if owner is None:
            if daemon_running and now - layer_dir.mtime < model.IN_FLIGHT_SECONDS:
                owner = IN_FLIGHT
            elif not layer_dir.is_dir:
                owner = Owner(Category.other, "overlay2 (unknown files)")
            elif is_buildkit_id(name) and not scans.buildkit.complete:
                owner = UNATTRIBUTED
            elif complete:
                rel = f"{index.layer_root}/{name}"
                owner = Owner(Category.orphans, rel)
                index.orphans.append(
                    Orphan(
                        OrphanKind.layer_dir_unreferenced,
                        rel,
                        "overlay2 dir named by no layer, container mount or build-cache record",
                        (rel,),
                    )
                )
            else:
                owner = UNATTRIBUTED
            index.dir_owner[name] = owner
        sized = owner.category in (Category.images, Category.build_cache)
        diff = _diff_of(index, name)
        whole = diff == f"{index.layer_root}/{name}"
        rel = f"{index.layer_root}/{name}"
        kept = index.marks.get(rel)  # aufs: a container's whole dir is its SizeRw area
        index.mark(rel, owner, f"layer:{name}" if sized and whole else kept.size_key if kept else None)
        if sized and not whole:
            index.mark(diff, size_key=f"layer:{name}")
        if driver_row(index.driver).side_dirs:
            _mark_side_dirs(index, name, owner)


def _diff_of(index: Index, name: str) -> str:
    """The part of a layer dir that Docker sizes: `diff/` on overlay2 and fuse-overlayfs; the
    whole dir on vfs (a full tree), aufs (`aufs/diff/<id>` is the diff) and overlay (`root/`
    or `upper/` with `work/`; its sizes come from layerdb and the naive diff)."""
    content = driver_row(index.driver).content
    return f"{index.layer_root}/{name}" + (f"/{content}" if content else "")


def _mark_side_dirs(index: Index, name: str, owner: Owner) -> None:
    """aufs/layers/<id> and aufs/mnt/<id> belong to whoever owns aufs/diff/<id>; an orphan takes them."""
    side = [f"{d}/{name}" for d in driver_row(index.driver).side_dirs]
    for rel in side:
        index.mark(rel, owner)
    if owner.category == Category.orphans:
        for i, orphan in enumerate(index.orphans):
            if orphan.path == owner.key:
                index.orphans[i] = Orphan(orphan.kind, orphan.path, orphan.reason, (*orphan.paths, *side))


def _being_removed(index: Index, scans: Scans, now: float, daemon_running: bool) -> frozenset[str]:
    """Containers a running daemon is removing now: their writable layer goes before their dir.

    `docker rm` writes the config with RemovalInProgress (state "removing") and Dead set,
    removes the writable and init dirs (each short link first), then the layerdb mount,
    then the container dir. A crashed rm leaves the same state, but one that stays old.
    """
    if not daemon_running:
        return frozenset()
    mtimes = scans.containers.mtimes
    return frozenset(
        container_id
        for container_id, view in index.containers.items()
        if view.record.state in ("removing", "dead")
        and now - mtimes.get(container_id, 0.0) < model.IN_FLIGHT_SECONDS
    )


def _check_missing_dirs(index: Index, scans: Scans, removing: frozenset[str]) -> None:
    """Layers and writable layers whose overlay2 dir is gone (not those of containers being removed)."""
    ov = scans.layer_dirs
    if not ov.readable:
        return
    for chain_id, layer in scans.layerdb.layers.items():
        if layer.cache_id not in ov.dirs:
            users = _users_of_layer(index, chain_id)
            index.problems.append(
                Problem(
                    ProblemKind.layer_dir_missing,
                    f"{index.layer_root}/{layer.cache_id}",
                    f"layer {chain_id[7:19]} has no dir; breaks {users}",
                )
            )
    for container_id, view in index.containers.items():
        if container_id in removing:
            continue
        if view.mount is not None and view.mount.mount_id not in ov.dirs:
            index.problems.append(
                Problem(
                    ProblemKind.layer_dir_missing,
                    f"{index.layer_root}/{view.mount.mount_id}",
                    f"writable layer of container {view.record.name or container_id[:12]} is gone",
                )
            )


def _mark_links(index: Index, ov: LayerDirScan, removing: frozenset[str]) -> None:
    """l/ short links are charged with the dir they point to; broken ones are orphans."""
    pointed: dict[str, str] = {}
    named = {d.link: name for name, d in ov.dirs.items() if d.link}
    for link in ov.links.values():
        rel = f"{index.layer_root}/l/{link.name}"
        if link.name in named and link.target_dir != named[link.name]:
            # A layer's own link, pointing elsewhere: damage to repair, never an orphan to delete.
            named_owner = index.dir_owner.get(named[link.name], METADATA)
            index.mark(rel, named_owner)
            if named_owner.category in (Category.images, Category.containers, Category.build_cache):
                index.problems.append(
                    Problem(
                        ProblemKind.link_missing,
                        rel,
                        f"short link of {index.layer_root}/{named[link.name]} points to "
                        f"{link.raw_target[:80]!r}, not ../{named[link.name]}/diff; "
                        "its children cannot mount",
                    )
                )
        elif link.target_dir is not None and link.target_dir in ov.dirs:
            pointed[link.target_dir] = link.name
            index.mark(rel, index.dir_owner.get(link.target_dir, METADATA))
        elif link.target_dir is not None and link.target_dir in index.dir_owner:
            # The dir of a known layer is gone: that is its layer_dir_missing problem.
            index.mark(rel, index.dir_owner[link.target_dir])
        elif not link.target_exists:
            index.orphans.append(
                Orphan(
                    OrphanKind.link_broken,
                    rel,
                    f"short link to {link.raw_target[:80]!r}, no layer dir",
                    (rel,),
                )
            )
            index.mark(rel, Owner(Category.orphans, rel))
    prefix = f"{index.layer_root}/"
    for i, orphan in enumerate(index.orphans):
        extra = tuple(
            f"{index.layer_root}/l/{pointed[p[len(prefix) :]]}"
            for p in orphan.paths
            if p.startswith(prefix) and p[len(prefix) :] in pointed
        )
        if extra:
            index.orphans[i] = Orphan(orphan.kind, orphan.path, orphan.reason, orphan.paths + extra)
    for name, layer_dir in ov.dirs.items():
        owner = index.dir_owner.get(name)
        if (
            layer_dir.link
            and layer_dir.link not in ov.links
            and owner is not None
            and owner.category in (Category.images, Category.containers)
            and not (owner.category == Category.containers and owner.key in removing)
        ):
            index.problems.append(
                Problem(
                    ProblemKind.link_missing,
                    f"{index.layer_root}/l/{layer_dir.link}",
                    f"short link of overlay2/{name} is missing; its children cannot mount",
                )
            )


def _check_link_files(index: Index, scans: Scans, removing: frozenset[str]) -> None:
    """`link` and `lower` of the dirs in use: overlay2 needs both to mount a layer's children.

    Not of the dirs of containers being removed: they lose their files one by one.
    """
    if not driver_row(index.driver).links:  # vfs, overlay, aufs: no links, no lower files
        return
    ov = scans.layer_dirs
    needs_lower: set[str] = {
        layer.cache_id for layer in scans.layerdb.layers.values() if layer.parent is not None
    }
    for view in index.containers.values():
        if view.mount is not None and view.mount.parent is not None:
            needs_lower.update(d for d in (view.mount.mount_id, view.mount.init_id) if d)
    for name, layer_dir in ov.dirs.items():
        owner = index.dir_owner.get(name)
        if (
            not layer_dir.is_dir
            or owner is None
            or owner.category not in (Category.images, Category.containers, Category.build_cache)
        ):
            continue
        if owner.category == Category.containers and owner.key in removing:
            continue
        if layer_dir.link_error is not None and (
            owner.category != Category.build_cache or layer_dir.link_error != "missing"
        ):
            index.problems.append(
                Problem(
                    ProblemKind.link_missing,
                    f"{index.layer_root}/{name}/link",
                    f"{layer_dir.link_error}; its children cannot mount",
                )
            )
        if layer_dir.lower_error is not None and (name in needs_lower or layer_dir.lower_error != "missing"):
            index.problems.append(
                Problem(
                    ProblemKind.metadata_unreadable,
                    f"{index.layer_root}/{name}/lower",
                    f"{layer_dir.lower_error}; overlay2 cannot mount this layer over its parents",
                )
            )


def _users_of_layer(index: Index, chain_id: ChainID) -> str:
    images = [(", ".join(v.tags) or v.record.id[7:19]) for v in index.images.values() if chain_id in v.chain]
    containers = [
        v.record.name or cid[:12]
        for cid, v in index.containers.items()
        if v.mount is not None and chain_id in ancestry(index.layers, v.mount.parent)
    ]
    parts = []
    if images:
        parts.append("images " + "; ".join(sorted(images)))
    if containers:
        parts.append("containers " + ", ".join(sorted(containers)))
    return " and ".join(parts) or "nothing in use"


def _recent(ov: LayerDirScan, names: Iterable[str], now: float) -> bool:
    return any(n in ov.dirs and now - ov.dirs[n].mtime < model.IN_FLIGHT_SECONDS for n in names)
