"""The containerd image store's joins, into the same Index the graphdriver store makes.

image name -> target -> platform manifests -> config -> diff IDs -> chain ID ->
snapshot -> its parents (which, for classic-builder images, include the `-init`
snapshots of build containers) -> `snapshots/<id>`; manifests and configs ->
blobs. A container -> snapshots `<id>` and `<id>-init`. Leases -> snapshots and
blobs (BuildKit's, or a container's). What no image, container, lease or other
namespace reaches is garbage containerd's GC would remove: an orphan, once
every reference was read.

Docker's figures (Docker 26.1 daemon/containerd/image_list.go, service.go):
image Size = for each present platform manifest, the present blobs (manifest,
config, layers) plus the usage of the top snapshot and all its ancestors;
SharedSize = usage of each chain ID (of the listed images' diff IDs) that more
than one listed image has; LayersSize = usage of every snapshot; a container's
SizeRw = usage of its snapshot. Usage is the stored size of a committed
snapshot, and for an active one containerd's live `fs.DiskUsage` of its `fs`:
allocated bytes of every inode, directories included, each inode once.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping

from ... import index as model
from ...chain import ancestry, chain_ids
from ...ids import CacheID, ChainID, ContainerID, DiffID, ImageID
from ...index import (
    IN_FLIGHT,
    ContainerView,
    ImageView,
    Index,
    Owner,
    StoreFigures,
)
from ...layout import Layout
from ...measure import usage
from ...model import (
    CLEANED_BY,
    Category,
    CleanCase,
    Cleaner,
    Orphan,
    OrphanKind,
    Problem,
    ProblemKind,
    settle_cleaned_by,
)
from ...readers.buildkit import BuildCacheScan
from ...readers.containerd import CONTENT, KIND_ACTIVE, ContainerdScan, snapshotter_dir
from ...readers.containers import ContainersScan
from ...readers.imagedb import ImageRecord
from ...readers.layerdb import LayerRecord
from ...readers.volumes import VolumesScan
from .. import common

DANGLING = "moby-dangling@"
RULE_26 = (
    "Docker 26.1's (no container config has ImagePlatform, written from 28.0 on): image Size = each "
    "platform image's present blobs and snapshots; LayersSize = every snapshot's usage"
)
RULE_28 = (
    "Docker 28.2+'s (container configs have ImagePlatform): image Size adds the blobs of attestation "
    "manifests; LayersSize adds every present blob an image reaches, once"
)
EXPIRE_LABEL = "containerd.io/gc.expire"
TEMPORARY_LABEL = "buildkit/lease.temporary"
PARENT_LABEL = "org.mobyproject.image.parent"
HISTORY_NAMESPACE = "moby_history"


def chain_of(diff_ids: Iterable[str]) -> list[str]:
    """identity.ChainIDs of an image's diff IDs, base first."""
    return list(chain_ids([DiffID(d) for d in diff_ids]))


def live_usage(path: str) -> int:
    """containerd's fs.DiskUsage: st_blocks*512 of every inode under `path` (itself included), once each."""
    return usage(path)


class SnapshotUsage:
    """containerd's `Usage` of each snapshot of a store, each active one walked once.

    Also the BuildKit reader's view of the store (`readers.buildkit.SnapshotStore`).
    """

    def __init__(self, root: str, scan: ContainerdScan) -> None:
        self.root = root
        self.scan = scan
        self._live: dict[str, int] = {}

    def usage(self, key: str) -> int | None:
        s = self.scan.snapshots.get(key)
        if s is None:
            return 0 if self.scan.readable else None
        if s.kind != KIND_ACTIVE:
            return s.size or 0
        if key not in self._live:
            sdir = snapshotter_dir(self.scan.snapshotter, self.scan.base)
            fs = os.path.join(self.root, sdir, "snapshots", s.id, "fs")
            self._live[key] = live_usage(fs)
        return self._live[key]

    def snapshot_dir(self, key: str) -> str | None:
        s = self.scan.snapshots.get(key)
        return s.id if s is not None else None

    def blob(self, digest: str) -> tuple[int, tuple[str, ...]] | None:
        b = self.scan.blobs.get(digest)
        return (b.size, b.variants) if b is not None else None


def familiar(name: str) -> str:
    """`docker.io/library/app:1` -> `app:1`, `docker.io/me/app:1` -> `me/app:1`."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix) and "/" not in name[len(prefix) :].split(":")[0].split("@")[0]:
            return name[len(prefix) :]
        if name.startswith(prefix) and prefix == "docker.io/":
            return name[len(prefix) :]
    return name


def _repo(name: str) -> str:
    at = name.split("@", 1)[0]
    last = at.rsplit("/", 1)[-1]
    return at[: len(at) - len(last)] + last.split(":", 1)[0]


def build_containerd_index(
    root: str,
    scan: ContainerdScan,
    containers: ContainersScan,
    volumes: VolumesScan,
    buildkit: BuildCacheScan,
    *,
    top_entries: tuple[str, ...],
    engine_id: bool,
    unused_paths: tuple[str, ...],
    now: float,
    daemon_running: bool,
    sizes: SnapshotUsage | None = None,
    layout: Layout,
) -> Index:
    """Join a containerd store's records and decide the owner of every path the walk will meet."""
    sdir = snapshotter_dir(scan.snapshotter, scan.base)
    index = Index(
        layout=layout,
        images={},
        layers={},
        layer_owner={},
        containers={},
        volume_users={},
        volumes=volumes,
        buildkit=buildkit,
        shared_rule="listed images (containerd store)",
        layer_dirs=scan.snapshot_dirs,
    )
    index.problems.extend(scan.problems)
    common.mark_top_entries(index, top_entries)
    snaps = scan.snapshots
    sizes = sizes or SnapshotUsage(root, scan)
    usages = {key: sizes.usage(key) or 0 for key in snaps}

    def path(key: str | None) -> list[str]:
        return list(ancestry(snaps, key))

    for key, s in snaps.items():
        index.layers[ChainID(key)] = LayerRecord(
            chain_id=ChainID(key),
            diff_id=DiffID(""),
            parent=ChainID(s.parent) if s.parent else None,
            cache_id=CacheID(s.id),
            size=usages[key],
        )

    # Images, grouped by target digest as `docker images` shows them.
    intermediate = {img.labels.get(PARENT_LABEL) for img in scan.images.values()}
    by_target: dict[str, list[str]] = {}
    for name, img in scan.images.items():
        by_target.setdefault(img.target, []).append(name)
    figures_size: dict[ImageID, tuple[int, int]] = {}
    chain_ids: dict[ImageID, list[str]] = {}
    rule28 = any(c.image_platform for c in containers.containers.values())
    index.size_rule = RULE_28 if rule28 else RULE_26
    for target, names in sorted(by_target.items()):
        img = scan.images[names[0]]
        image_id = ImageID(target)
        named = sorted(n for n in names if not n.startswith(DANGLING))
        tags = tuple(familiar(n) for n in named if "@" not in n)
        digests = tuple(f"{familiar(_repo(n))}@{target}" for n in named)
        size = 0
        chains: list[str] = []
        for m in img.manifests:
            chain = chain_of(m.diff_ids)
            chains.extend(chain)
            content = sum(
                scan.blobs[d].size
                for d in (m.digest, m.config, *m.layers)
                if d in scan.blobs and d in scan.blob_files
            )
            size += content + sum(usages[k] for k in path(chain[-1] if chain else None))
        if rule28:
            size += sum(scan.blobs[d].size for d in img.pseudo_content)
        first = img.manifests[0] if img.manifests else None
        top_path = path(chain_of(first.diff_ids)[-1] if first and first.diff_ids else None)
        listed = bool(img.manifests) and (bool(named) or target not in intermediate)
        index.images[image_id] = ImageView(
            record=ImageRecord(
                id=image_id,
                diff_ids=tuple(DiffID(d) for d in (first.diff_ids if first else ())),
                parent=ImageID(p) if (p := img.labels.get(PARENT_LABEL)) else None,
                created=first.created if first else None,
                os="linux",
            ),
            chain=tuple(ChainID(k) for k in reversed(top_path)),
            tags=tags,
            digests=digests,
            loaded=bool(img.manifests),
            listed=listed,
            containers=0,
        )
        figures_size[image_id] = (size, 0)
        chain_ids[image_id] = chains
        if first is not None:
            config = f"{scan.base}/{CONTENT}/blobs/sha256/{first.config[7:]}"
            index.image_configs[image_id] = (config, first.config)
            index.image_layers[image_id] = frozenset(ChainID(c) for c in chain_of(first.diff_ids))
    refs: dict[str, int] = {}
    for image_id, view in index.images.items():
        if view.listed:
            for c in chain_ids[image_id]:
                refs[c] = refs.get(c, 0) + 1
    for image_id, (size, _) in figures_size.items():
        shared = sum(usages[c] for c in chain_ids[image_id] if refs.get(c, 0) > 1 and c in snaps)
        figures_size[image_id] = (size, shared)

    # Containers: their snapshots, logs, volumes.
    counts: dict[ImageID, int] = {}
    users: dict[str, list[ContainerID]] = {}
    rw_sizes: dict[ContainerID, int] = {}
    used: set[ChainID] = set()
    for cid, record in containers.containers.items():
        index.containers[cid] = ContainerView(record, None)
        if record.image_id is not None:
            counts[record.image_id] = counts.get(record.image_id, 0) + 1
        for volume in record.volumes:
            users.setdefault(volume, []).append(cid)
        if cid in snaps:
            rw_sizes[cid] = usages[cid]
            used.update(ChainID(k) for k in path(snaps[cid].parent))
        elif scan.readable:
            index.problems.append(
                Problem(
                    ProblemKind.layer_dir_missing,
                    f"{sdir}/snapshots",
                    f"container {record.name or cid[:12]} has no snapshot",
                )
            )
        common.mark_logs(index, cid, record.log_files)
    common.count_containers(index, counts)
    index.volume_users = {k: tuple(v) for k, v in users.items()}
    index.held_volumes = containers.unusable_volumes
    for cid in sorted(containers.unusable):
        rel = f"containers/{cid}"
        owner = Owner(Category.orphans, rel)
        index.orphans.append(Orphan(OrphanKind.container_dir_orphaned, rel, containers.unusable[cid], (rel,)))
        index.mark(rel, owner)

    stale = stale_leases(scan, frozenset(index.containers), now, daemon_running)
    held: dict[str, list[str]] = {lease_id: [] for lease_id in stale}
    _own_snapshots(index, scan, root, now, daemon_running, held)
    _own_blobs(index, scan, root, now, daemon_running, held)
    for lease_id, reason in sorted(stale.items()):
        index.orphans.append(
            Orphan(
                OrphanKind.lease_stale,
                _lease_rel(scan.base, lease_id),
                reason,
                tuple(held[lease_id]),
                lease_cleaned_by(scan.leases[lease_id].labels, now),
            )
        )
    common.mark_store_unused(
        index,
        unused_paths,
        "image store the daemon no longer uses (it uses the containerd store): all reclaimable",
    )
    common.mark_volumes(index, volumes)
    settle_cleaned_by(index.orphans)
    index.figures = StoreFigures(
        image_sizes=figures_size,
        rw_sizes=rw_sizes,
        layers_size=sum(usages.values()) + (_reached_content(scan) if rule28 else 0),
        used_layers=frozenset(used),
    )
    return index


def _reached_content(scan: ContainerdScan) -> int:
    """Size of every present blob some image's target reaches, each once (28.2+'s ImageDiskUsage)."""
    reached: set[str] = set()
    for img in scan.images.values():
        reached |= img.content
    return sum(scan.blobs[d].size for d in reached)


def _recent(path: str, now: float) -> bool:
    try:
        return now - os.lstat(path).st_mtime < model.IN_FLIGHT_SECONDS
    except OSError:
        return False


def _lease_rel(base: str, lease_id: str) -> str:
    return f"{base}/io.containerd.metadata.v1.bolt/meta.db#leases/{lease_id}"


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)")


def _rfc3339(text: str | None) -> float | None:
    m = _RFC3339.fullmatch(text or "")
    if m is None:
        return None
    zone = "+00:00" if m.group(2) == "Z" else m.group(2)
    try:
        return dt.datetime.fromisoformat(m.group(1) + zone).timestamp()
    except ValueError:
        return None


def stale_leases(
    scan: ContainerdScan, containers: frozenset[str], now: float, daemon_running: bool
) -> dict[str, str]:
    """Lease ID -> why it is garbage, for the leases nothing will use again.

    - a container's lease (named after it, no labels) once the container is gone;
      while a daemon runs, not if made in the last hour (a create under way);
    - with the daemon stopped: a lease whose `containerd.io/gc.expire` has passed
      (containerd's GC deletes it), and BuildKit's `buildkit/lease.temporary`
      leases, which BuildKit deletes when the daemon starts (checked on 26.1).
      While a daemon runs these may belong to a build under way: never claimed.
    """
    out: dict[str, str] = {}
    for lease in scan.leases.values():
        expire = _rfc3339(lease.labels.get(EXPIRE_LABEL))
        if _is_container_lease(lease.id) and not lease.labels and lease.id not in containers:
            recent = lease.created is None or now - lease.created < model.IN_FLIGHT_SECONDS
            if not (daemon_running and recent):
                out[lease.id] = "lease of a container that is gone pins its snapshots"
        elif daemon_running:
            continue
        elif expire is not None and expire <= now:
            out[lease.id] = "lease expired: containerd's GC deletes it and what only it holds"
        elif TEMPORARY_LABEL in lease.labels:
            out[lease.id] = (
                "BuildKit's temporary lease, of a build the stopped daemon ended: deleted when it starts"
            )
    return out


def lease_cleaned_by(labels: Mapping[str, str], now: float) -> Cleaner:
    """Who removes a stale lease: containerd's GC once expired, BuildKit its temporary ones, else no one."""
    expire = _rfc3339(labels.get(EXPIRE_LABEL))
    if expire is not None and expire <= now:
        return CLEANED_BY[CleanCase.lease_expired]
    if TEMPORARY_LABEL in labels:
        return CLEANED_BY[CleanCase.lease_temporary]
    return CLEANED_BY[OrphanKind.lease_stale]


def _own_snapshots(
    index: Index,
    scan: ContainerdScan,
    root: str,
    now: float,
    daemon_running: bool,
    stale: dict[str, list[str]],
) -> None:
    """Owner of every snapshot and of every dir under snapshots/."""
    snaps = scan.snapshots
    sdir = snapshotter_dir(scan.snapshotter, scan.base)
    owner: dict[str, Owner] = {}

    def claim(key: str | None, who: Owner | None) -> None:
        """Own `key` and its unowned ancestors: as `who`, or (None) each as an image layer."""
        while key is not None and key in snaps and key not in owner:
            owner[key] = who or Owner(Category.images, snaps[key].id)
            key = snaps[key].parent

    for view in index.images.values():
        if view.chain:
            claim(view.chain[-1], None)
    for blob in scan.blobs.values():
        for key in blob.snapshots:
            claim(key, None)
    for cid in index.containers:
        for key in (cid, f"{cid}-init"):
            if key in snaps:
                owner.setdefault(key, Owner(Category.containers, cid))
                claim(snaps[key].parent, None)
    for key in scan.runtime_snapshots:
        claim(key, Owner(Category.containers, key.removesuffix("-init")))
    for key in sorted(scan.root_snapshots):
        claim(key, Owner(Category.other, "snapshots kept by a containerd.io/gc.root label (not Docker's)"))
    # Live leases first: a stale lease's snapshot may sit on one a live lease holds.
    for lease in sorted(scan.leases.values(), key=lambda x: x.id in stale):
        if lease.id not in stale:
            for k in lease.snapshots:
                claim(k, Owner(Category.build_cache, k))
            continue
        pinned = Owner(Category.orphans, _lease_rel(scan.base, lease.id))
        for k in lease.snapshots:
            before = set(owner)
            claim(k, pinned)
            stale[lease.id].extend(
                sorted(
                    f"{sdir}/snapshots/{snaps[n].id}"
                    for n in owner.keys() - before
                    if snaps[n].id in scan.snapshot_dirs
                )
            )
    complete = scan.readable
    for key, s in snaps.items():
        if key in owner:
            continue
        rel = f"{sdir}/snapshots/{s.id}"
        if daemon_running and _recent(os.path.join(root, rel), now):
            owner[key] = IN_FLIGHT
        elif complete:
            owner[key] = Owner(Category.orphans, rel)
            index.orphans.append(
                Orphan(
                    OrphanKind.snapshot_unreferenced,
                    rel,
                    f"snapshot {key[:40]} reached by no image, container or lease",
                    (rel,),
                )
            )
        else:
            owner[key] = Owner(Category.other, "unattributed (references unreadable)")
    by_id = {s.id: key for key, s in snaps.items()}
    for name in sorted(scan.snapshot_dirs):
        rel = f"{sdir}/snapshots/{name}"
        known = by_id.get(name)
        who: Owner
        if known is not None:
            who = owner[known]
            index.layer_owner[ChainID(known)] = who
        elif name in scan.foreign_snapshots:
            who = Owner(Category.other, f"containerd namespace {scan.foreign_snapshots[name]}")
        elif daemon_running and _recent(os.path.join(root, rel), now):
            who = IN_FLIGHT
        elif complete:
            who = Owner(Category.orphans, rel)
            index.orphans.append(
                Orphan(
                    OrphanKind.snapshot_dir_unreferenced,
                    rel,
                    "snapshot dir with no record in the snapshotter's metadata.db",
                    (rel,),
                )
            )
        else:
            who = Owner(Category.other, "unattributed (references unreadable)")
        index.mark(rel, who)
    for key, who in owner.items():
        index.layer_owner.setdefault(ChainID(key), who)


def _is_container_lease(lease_id: str) -> bool:
    return len(lease_id) == 64 and all(c in "0123456789abcdef" for c in lease_id)


def _own_blobs(
    index: Index,
    scan: ContainerdScan,
    root: str,
    now: float,
    daemon_running: bool,
    stale: dict[str, list[str]],
) -> None:
    """Owner of every file under blobs/sha256/: an image's, a lease's, another namespace's, or garbage."""
    bdir = f"{scan.base}/{CONTENT}/blobs/sha256"
    owner: dict[str, Owner] = {}

    def reach(digest: str, who: Owner) -> None:
        stack = [digest]
        while stack:
            d = stack.pop()
            if d in owner:
                continue
            owner[d] = who
            blob = scan.blobs.get(d)
            if blob is not None:
                stack.extend(blob.refs)

    for img in scan.images.values():
        reach(img.target, Owner(Category.image_content, "content store"))
    for d, blob in scan.blobs.items():
        if blob.root:
            reach(d, Owner(Category.image_content, "content store"))
    for lease in sorted(scan.leases.values(), key=lambda x: x.id in stale):
        for d in lease.content:
            if lease.id not in stale:
                reach(d, Owner(Category.build_cache, "content"))
                continue
            before = set(owner)
            reach(d, Owner(Category.orphans, _lease_rel(scan.base, lease.id)))
            stale[lease.id].extend(
                sorted(f"{bdir}/{n[7:]}" for n in owner.keys() - before if n in scan.blob_files)
            )
    for d, ns in scan.foreign_blobs.items():
        owner.setdefault(
            d,
            Owner(Category.build_cache, "build history")
            if ns == HISTORY_NAMESPACE
            else Owner(Category.other, f"containerd namespace {ns}"),
        )
    complete = scan.readable
    for d in sorted(scan.blob_files):
        rel = f"{bdir}/{d[7:]}"
        who = owner.get(d)
        if who is None:
            if daemon_running and _recent(os.path.join(root, rel), now):
                who = IN_FLIGHT
            elif complete:
                who = Owner(Category.orphans, rel)
                reason = (
                    "blob no image, lease or namespace references"
                    if d in scan.blobs
                    else "blob with no record in meta.db"
                )
                case = OrphanKind.blob_unreferenced if d in scan.blobs else CleanCase.blob_no_record
                index.orphans.append(
                    Orphan(OrphanKind.blob_unreferenced, rel, reason, (rel,), CLEANED_BY[case])
                )
            else:
                who = Owner(Category.other, "unattributed (references unreadable)")
        index.mark(rel, who)
    for ingest in scan.ingests:
        rel = f"{scan.base}/{CONTENT}/ingest/{ingest}"
        if not daemon_running:
            index.orphans.append(
                Orphan(OrphanKind.content_ingest, rel, "partial content write, never finished", (rel,))
            )
            index.mark(rel, Owner(Category.orphans, rel))
        else:
            index.mark(rel, IN_FLIGHT)
