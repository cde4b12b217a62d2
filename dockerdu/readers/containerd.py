"""Read the containerd image store (Docker's `containerd-snapshotter` feature) offline.

Learned from Docker 26.1.5 started with `{"features": {"containerd-snapshotter":
true}}` and no system containerd, so it runs its own with root
`<data-root>/containerd/daemon`, namespace `moby`, snapshotter `overlayfs`:

- `io.containerd.metadata.v1.bolt/meta.db` (bbolt), under `v1/moby/`:
  `images/<name>/target/{digest,mediatype,size}` (+ `labels/`; dangling images
  are named `moby-dangling@<digest>`, classic-builder parents carry the label
  `org.mobyproject.image.parent`); `content/blob/<digest>/{size,labels/}`
  (size a zigzag varint; labels `containerd.io/gc.ref.content.*` name child
  blobs, `containerd.io/gc.ref.snapshot.<snapshotter>` a snapshot key);
  `snapshots/<snapshotter>/<key>/{name,parent,labels/}`; `leases/<id>/
  {snapshots/<snapshotter>/<key>, content/<digest>, labels/}`; `containers/<id>/
  snapshotKey` (runtime records).
- `io.containerd.snapshotter.v1.overlayfs/metadata.db` (bbolt):
  `v1/snapshots/<ns>/<n>/<key>/{id (uvarint), kind (1 view, 2 active,
  3 committed), parent (a name), size, inodes (zigzag varints, committed only)}`.
  The data of snapshot `id` is `snapshots/<id>/{fs,work}`.
- `io.containerd.content.v1.content/blobs/sha256/<hex>`: the blobs (index,
  manifests, configs as JSON; compressed layers); `ingest/` partial writes.

Snapshot keys: an image layer is its chain ID; the classic builder commits
build containers, so an image layer's parent may be a `<id>-init` snapshot.
A container's writable snapshot is `<container ID>`, its init `<id>-init`,
both held by a lease named after the container.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bbolt import BoltError, Bucket, open_db
from ..fsread import ReadError, read_bytes
from ..model import Problem, ProblemKind

CTRD = "containerd/daemon"
META_DB = "io.containerd.metadata.v1.bolt/meta.db"
CONTENT = "io.containerd.content.v1.content"
NAMESPACE = b"moby"
"""The namespace dockerd keeps its images, snapshots and leases in (the layout's, by default)."""
# Blobs this reader decodes as JSON (manifests, indexes, configs) are small; a
# layer blob is never read.
MAX_JSON_BLOB = 16 << 20
KIND_VIEW, KIND_ACTIVE, KIND_COMMITTED = 1, 2, 3
LAYER_TYPES = ("tar", "layer")
VARIANT_LABEL = "buildkit.io/compression/digest."
# Go's time.MarshalBinary counts seconds from year 1; Unix time starts this many later.
GO_EPOCH_OFFSET = 62135596800
# A db a running daemon commits to while it is read can come out torn; the next read is whole.
READ_ATTEMPTS = 3


def snapshotter_dir(name: str, base: str = CTRD) -> str:
    """Dir of a snapshotter plugin under the containerd root `base` (root-relative, or absolute
    for a system containerd's root), e.g. `containerd/daemon/io.containerd.snapshotter.v1.overlayfs`."""
    return f"{base}/io.containerd.snapshotter.v1.{name}"


@dataclass(frozen=True)
class Snapshot:
    """One snapshot of the snapshotter's metadata.db."""

    key: str
    id: str
    kind: int
    parent: str | None
    size: int | None
    """Stored usage (committed snapshots); None for active ones and views."""


@dataclass(frozen=True)
class Blob:
    """One content-store record of meta.db."""

    digest: str
    size: int
    refs: tuple[str, ...]
    """Child blobs named by `containerd.io/gc.ref.content.*` labels."""
    snapshots: tuple[str, ...]
    """Snapshot keys named by `containerd.io/gc.ref.snapshot.<snapshotter>` labels."""
    root: bool
    """Labelled `containerd.io/gc.root`."""
    variants: tuple[str, ...] = ()
    """Compression variants BuildKit names with `buildkit.io/compression/digest.*` labels."""


@dataclass(frozen=True)
class Manifest:
    """One platform image of an image: its manifest, config and layers."""

    digest: str
    config: str
    layers: tuple[str, ...]
    diff_ids: tuple[str, ...]
    created: str | None


@dataclass(frozen=True)
class CtrdImage:
    """One meta.db image record with its manifests resolved."""

    name: str
    target: str
    labels: dict[str, str]
    manifests: tuple[Manifest, ...]
    pseudo_content: tuple[str, ...] = ()
    """Present blobs (manifest, config, layers) of each attestation or other pseudo-image
    manifest the target reaches, once per manifest: Docker 27+ counts them in the image's Size."""
    content: frozenset[str] = frozenset()
    """Every present blob the target reaches (itself, manifests, configs, layers)."""


@dataclass(frozen=True)
class Lease:
    """A meta.db lease and what it holds."""

    id: str
    snapshots: tuple[str, ...]
    content: tuple[str, ...]
    labels: dict[str, str]
    created: float | None = None
    """Unix time of `createdat`, when it decodes."""


@dataclass(frozen=True)
class Namespace:
    """Another client's namespace of the same containerd (`k8s.io`, `default`, `buildkit`)."""

    name: str
    images: tuple[str, ...]
    blobs: frozenset[str]
    """Digests of its content records."""
    snapshots: int
    """Snapshot records of the snapshotter Docker uses."""


@dataclass
class ContainerdScan:
    """Everything read from a containerd store; `readable` false when meta.db failed."""

    snapshotter: str
    base: str = CTRD
    """Where the containerd root is: `containerd/daemon` (managed, relative to the Docker root)
    or a system containerd's root as an absolute path; every path the scan names starts so."""
    namespace: str = NAMESPACE.decode()
    """The namespace whose records are Docker's."""
    images: dict[str, CtrdImage] = field(default_factory=dict)
    blobs: dict[str, Blob] = field(default_factory=dict)
    blob_files: frozenset[str] = frozenset()
    """Digests with a file under blobs/sha256/."""
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    snapshot_dirs: frozenset[str] = frozenset()
    """Names of the dirs under `snapshots/`."""
    leases: dict[str, Lease] = field(default_factory=dict)
    runtime_snapshots: frozenset[str] = frozenset()
    """Snapshot keys named by containerd container records."""
    root_snapshots: frozenset[str] = frozenset()
    """Snapshot keys labelled `containerd.io/gc.root` (kept by another client, e.g. `ctr`)."""
    ingests: tuple[str, ...] = ()
    foreign_blobs: dict[str, str] = field(default_factory=dict)
    """Digest -> the other namespace (e.g. `moby_history`) that has a record of it."""
    foreign_snapshots: dict[str, str] = field(default_factory=dict)
    """Snapshot dir id -> the other namespace whose snapshot it is (e.g. `k8s.io`)."""
    namespaces: dict[str, Namespace] = field(default_factory=dict)
    """Every namespace of meta.db but Docker's, with what it holds."""
    docker_namespace: bool = True
    """meta.db has Docker's namespace (`moby`); False when it exists without one."""
    problems: list[Problem] = field(default_factory=list)
    readable: bool = True


def uvarint(data: bytes) -> int:
    """Decode Go's binary.Uvarint; raises ValueError on a truncated value."""
    value = shift = 0
    for byte in data[:10]:
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
    raise ValueError("truncated varint")


def varint(data: bytes) -> int:
    """Decode Go's binary.Varint (zigzag)."""
    u = uvarint(data)
    return (u >> 1) ^ -(u & 1)


def go_time(data: bytes | None) -> float | None:
    """Decode Go's time.MarshalBinary (version 1 or 2): Unix seconds, or None."""
    if not data or data[0] not in (1, 2) or len(data) < 15:
        return None
    secs = int.from_bytes(data[1:9], "big", signed=True) - GO_EPOCH_OFFSET
    return secs + int.from_bytes(data[9:13], "big") / 1e9


def _open(path: Path) -> Bucket:
    """open_db, again when the copy read was torn by a concurrent commit."""
    for attempt in range(READ_ATTEMPTS):
        try:
            return open_db(path)
        except BoltError:  # noqa: PERF203 (a few attempts at most)
            if attempt == READ_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _labels(bucket: Bucket | None) -> dict[str, str]:
    if bucket is None:
        return {}
    return {
        k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
        for k, v in bucket.items()
        if isinstance(v, bytes)
    }


def _sub(bucket: Bucket | None, *path: bytes) -> Bucket | None:
    for name in path:
        if bucket is None:
            return None
        bucket = bucket.bucket(name)
    return bucket


def _keys(bucket: Bucket | None) -> tuple[str, ...]:
    return tuple(k.decode("utf-8", "replace") for k in bucket.keys()) if bucket is not None else ()


def read_containerd(
    root: Path, snapshotter: str = "overlayfs", base_rel: str = CTRD, namespace: str = NAMESPACE.decode()
) -> ContainerdScan:
    """Read meta.db, the snapshotter's metadata.db and the JSON blobs of the containerd root
    `root / base_rel` (`base_rel` absolute for a system containerd's root); Docker's records
    are those of `namespace`, every other namespace's someone else's."""
    scan = ContainerdScan(snapshotter, base_rel, namespace=namespace)
    base = root / base_rel
    _read_snapshotter(base / f"io.containerd.snapshotter.v1.{snapshotter}", scan)
    _read_meta(base / META_DB, scan)
    blobs_dir = base / CONTENT / "blobs" / "sha256"
    try:
        scan.blob_files = frozenset(f"sha256:{n}" for n in os.listdir(blobs_dir))
    except FileNotFoundError:
        pass
    except OSError as e:
        scan.readable = False
        scan.problems.append(
            Problem(ProblemKind.path_unreadable, f"{base_rel}/{CONTENT}/blobs/sha256", e.strerror or str(e))
        )
    try:
        scan.ingests = tuple(sorted(os.listdir(base / CONTENT / "ingest")))
    except OSError:
        pass
    _resolve_images(blobs_dir, scan)
    return scan


def _read_snapshotter(sdir: Path, scan: ContainerdScan) -> None:
    rel = snapshotter_dir(scan.snapshotter, scan.base)
    try:
        scan.snapshot_dirs = frozenset(os.listdir(sdir / "snapshots"))
    except FileNotFoundError:
        pass
    except OSError as e:
        scan.readable = False
        scan.problems.append(Problem(ProblemKind.path_unreadable, f"{rel}/snapshots", e.strerror or str(e)))
    if not os.path.lexists(sdir / "metadata.db"):
        return
    try:
        snaps = _sub(_open(sdir / "metadata.db"), b"v1", b"snapshots")
        for key, b in snaps.items() if snaps is not None else ():
            if not isinstance(b, Bucket):
                continue
            name = key.decode("utf-8", "replace")
            ns, _, rest = name.partition("/")
            short = rest.partition("/")[2]
            raw_parent = b.get(b"parent")
            raw_size, raw_kind, raw_id = b.get(b"size"), b.get(b"kind"), b.get(b"id")
            if raw_id is None or not raw_kind:
                raise ValueError(f"snapshot {name} has no id or kind")
            if ns != scan.namespace:
                scan.foreign_snapshots[str(uvarint(raw_id))] = ns
                continue
            parent = raw_parent.decode("utf-8", "replace").split("/", 2)[-1] if raw_parent else None
            scan.snapshots[short] = Snapshot(
                key=short,
                id=str(uvarint(raw_id)),
                kind=raw_kind[0],
                parent=parent,
                size=varint(raw_size) if raw_size else None,
            )
    except (OSError, BoltError, ValueError) as e:
        scan.readable = False
        scan.problems.append(Problem(ProblemKind.metadata_unreadable, f"{rel}/metadata.db", str(e)))


def _read_meta(path: Path, scan: ContainerdScan) -> None:
    rel = f"{scan.base}/{META_DB}"
    if not os.path.lexists(path):
        return
    try:
        v1 = _sub(_open(path), b"v1")
        for name, b in (v1 or _EMPTY).items():
            if isinstance(b, Bucket) and name != scan.namespace.encode():
                other = name.decode("utf-8", "replace")
                blobs = _keys(_sub(b, b"content", b"blob"))
                for digest in blobs:
                    scan.foreign_blobs.setdefault(digest, other)
                scan.namespaces[other] = Namespace(
                    other,
                    tuple(sorted(_keys(b.bucket(b"images")))),
                    frozenset(blobs),
                    len(_keys(_sub(b, b"snapshots", scan.snapshotter.encode()))),
                )
        ns = _sub(v1, scan.namespace.encode())
        if ns is None:
            scan.docker_namespace = False
            return
        for raw_name, b in (_sub(ns, b"images") or _EMPTY).items():
            target = b.bucket(b"target") if isinstance(b, Bucket) else None
            raw_target = target.get(b"digest") if target is not None else None
            if raw_target is None or not isinstance(b, Bucket):
                continue
            image_name = raw_name.decode("utf-8", "replace")
            scan.images[image_name] = CtrdImage(
                image_name, raw_target.decode(), _labels(b.bucket(b"labels")), ()
            )
        for raw_digest, b in (_sub(ns, b"content", b"blob") or _EMPTY).items():
            if not isinstance(b, Bucket):
                continue
            labels = _labels(b.bucket(b"labels"))
            raw = b.get(b"size")
            digest = raw_digest.decode()
            scan.blobs[digest] = Blob(
                digest=digest,
                size=varint(raw) if raw else 0,
                refs=tuple(v for k, v in labels.items() if k.startswith("containerd.io/gc.ref.content")),
                snapshots=tuple(
                    v for k, v in labels.items() if k == f"containerd.io/gc.ref.snapshot.{scan.snapshotter}"
                ),
                root="containerd.io/gc.root" in labels,
                variants=tuple(v for k, v in labels.items() if k.startswith(VARIANT_LABEL)),
            )
        for lease_id, b in (_sub(ns, b"leases") or _EMPTY).items():
            if not isinstance(b, Bucket):
                continue
            scan.leases[lease_id.decode()] = Lease(
                id=lease_id.decode(),
                snapshots=_keys(_sub(b, b"snapshots", scan.snapshotter.encode())),
                content=_keys(b.bucket(b"content")),
                labels=_labels(b.bucket(b"labels")),
                created=go_time(b.get(b"createdat")),
            )
        roots: set[str] = set()
        for raw_key, b in (_sub(ns, b"snapshots", scan.snapshotter.encode()) or _EMPTY).items():
            if isinstance(b, Bucket) and "containerd.io/gc.root" in _labels(b.bucket(b"labels")):
                roots.add(raw_key.decode("utf-8", "replace"))
        scan.root_snapshots = frozenset(roots)
        held: set[str] = set()
        for b in (_sub(ns, b"containers") or _EMPTY).values():
            if isinstance(b, Bucket) and (key := b.get(b"snapshotKey")):
                held.add(key.decode())
        scan.runtime_snapshots = frozenset(held)
    except (OSError, BoltError, ValueError, UnicodeDecodeError) as e:
        scan.readable = False
        scan.problems.append(Problem(ProblemKind.metadata_unreadable, rel, str(e)))


class _Empty:
    def items(self) -> tuple[()]:
        return ()

    def values(self) -> tuple[()]:
        return ()


_EMPTY: Any = _Empty()


def _read_json(blobs_dir: Path, digest: str) -> Any:
    path = blobs_dir / digest.partition(":")[2]
    try:
        data = read_bytes(path, limit=MAX_JSON_BLOB)
    except ReadError as e:
        if str(e) == "missing":
            raise FileNotFoundError(errno.ENOENT, "missing", str(path)) from None
        raise ValueError(f"blob {e}") from None
    return json.loads(data)


def _is_layer(media_type: str) -> bool:
    return any(t in media_type for t in LAYER_TYPES) and "in-toto" not in media_type


def _resolve_images(blobs_dir: Path, scan: ContainerdScan) -> None:
    """Resolve each image's target into its present, non-attestation platform manifests."""
    for name, image in list(scan.images.items()):
        manifests: list[Manifest] = []
        walk = _Reached()
        try:
            manifests = _manifests(blobs_dir, scan, image.target, 0, walk)
        except (OSError, ValueError, KeyError, TypeError) as e:
            if not isinstance(e, FileNotFoundError):
                scan.problems.append(
                    Problem(
                        ProblemKind.metadata_unreadable,
                        f"{scan.base}/{CONTENT}/blobs/sha256/{image.target[7:]}",
                        f"image {name}: {e}",
                    )
                )
        scan.images[name] = CtrdImage(
            image.name,
            image.target,
            image.labels,
            tuple(manifests),
            tuple(walk.pseudo),
            frozenset(walk.content),
        )


@dataclass
class _Reached:
    """What a walk from an image's target reached, besides its platform images."""

    content: set[str] = field(default_factory=set)
    pseudo: list[str] = field(default_factory=list)


def _present(scan: ContainerdScan, digest: str) -> bool:
    return digest in scan.blobs and digest in scan.blob_files


def _manifests(
    blobs_dir: Path, scan: ContainerdScan, digest: str, depth: int, walk: _Reached, pseudo: bool = False
) -> list[Manifest]:
    if digest not in scan.blob_files or depth > 4:
        return []
    if _present(scan, digest):
        walk.content.add(digest)
    doc = _read_json(blobs_dir, digest)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if "manifests" in doc:
        out: list[Manifest] = []
        for desc in doc["manifests"]:
            annotations = desc.get("annotations") or {}
            attestation = annotations.get("vnd.docker.reference.type") == "attestation-manifest"
            found = _manifests(blobs_dir, scan, desc["digest"], depth + 1, walk, attestation)
            if not attestation:
                out.extend(found)
        return out
    config = doc.get("config")
    if not isinstance(config, dict):
        return []
    layers = doc.get("layers") or []
    children = [str(config.get("digest")), *(str(x.get("digest")) for x in layers if isinstance(x, dict))]
    walk.content.update(d for d in children if _present(scan, d))
    if pseudo or any(not _is_layer(str(x.get("mediaType", ""))) for x in layers):
        # an attestation or other pseudo image: its blobs only
        walk.pseudo.extend(d for d in (digest, *children) if _present(scan, d))
        return []
    if config["digest"] not in scan.blob_files:
        return []
    cfg = _read_json(blobs_dir, config["digest"])
    diff_ids = tuple(str(d) for d in (cfg.get("rootfs") or {}).get("diff_ids") or ())
    created = cfg.get("created")
    return [
        Manifest(
            digest=digest,
            config=str(config["digest"]),
            layers=tuple(str(x["digest"]) for x in layers),
            diff_ids=diff_ids,
            created=created if isinstance(created, str) else None,
        )
    ]
