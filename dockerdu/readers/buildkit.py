"""Read Docker's BuildKit build cache offline: records only.

`read_build_cache` reads BuildKit's databases and nothing else; `join_build_cache`
(run by each store, with its layers or snapshots) gives each record its dir and size.

Learned from Docker 26.1.5 (BuildKit 0.13) and 20.10.24 on overlay2, comparing
with their `GET /system/df` `BuildCache[]`; both use the same files. The dbs
are created, empty, when the daemon starts; `history.db` exists in 26.1 only.

Files in `<root>/buildkit/` (all bbolt):

- `metadata_v2.db`: the cache records. `_main/<record ID>/<field>`, each value
  JSON `{"value": ..., "index": ...}` (an empty value means cleared):
  `cache.snapshot` (snapshot key; empty means the record ID), `cache.parent`,
  `cache.mergeParents`, `cache.lowerDiffParent`, `cache.upperDiffParent`,
  `cache.equalMutable`, `snapshot.committed`, `snapshot.size` (bytes, -1 or
  absent = not computed), `cache.description`, `cache.recordType` (absent =
  "regular"), `cache.usageCount`, `cache.lastUsedAt`/`cache.createdAt` (Unix
  ns), `cache.blob`, `cache.blobonly`, `cache.chainID`, `cache.deleted`.
  `_index` and `_external` (content hashes) repeat record IDs. E.g.
  `_main/aa3a4ge5outduu2jpqegaxyi9/cache.description = {"value":"mount / from
  exec /bin/sh -c head -c 300000 /dev/urandom > /a.bin"}`.
- `snapshots.db` (Docker's snapshot adapter): a bucket per snapshot key.
  Prepare runs `overlay2.Create(<key>)` and stores `parent` (a key or a layer
  `sha256:<chainID>`); `Commit(name, key)` stores `committed=<key>` in bucket
  `<name>` and `iscommitted` in bucket `<key>`; exporting as a layer adds
  `chainid`; `size` caches a computed usage. A key's overlay2 dir is its
  `committed` value, else the key itself; a `sha256:` key or a bucket with
  only `chainid` is a layerdb layer, whose dir is that layer's `cache-id`.
- `containerdmeta.db`: `v1/buildkit/leases/<record ID>/snapshots/default/<key>`
  and `v1/buildkit/content/blob/<digest>` (files in `buildkit/content/blobs/`).
- `cache.db` (solver keys: `_backlinks`, `_byresult`, `_links`, `_result`) and
  `history.db` (`_records`: build history protobufs) name no dir; not read.

Record ID -> overlay2 dir (a BuildKit dir has a 25-char base-36 name and no
layerdb entry until exported):

- mutable records (no `snapshot.committed`: cache mounts, local sources,
  some exec outputs): record ID = snapshot key = dir, e.g. cache mount
  `7b8yyww55psc35o43hviz1tvq` -> `overlay2/7b8yyww55psc35o43hviz1tvq`;
- committed records: `snapshots.db/<record ID>/committed` names the dir:
  `aa3a4ge5outduu2jpqegaxyi9` -> `overlay2/fu50iy38ikw9zh082xejjv7vw`; once
  exported, `chainid` there names the layer whose `cache-id` is that dir;
- `FROM` records (`cache.blobonly`): `cache.snapshot = sha256:<chainID>` of the
  base image layer, e.g. `897a19jfo1cvynh3wobrsd15o` -> the 64-hex `cache-id`
  `248a1ed0d44b...` of an imported image's layer.

Listing: every `_main` record except those marked `cache.deleted` and those
whose `cache.equalMutable` names an existing record (the committed twin of a
mutable record: the API shows the mutable one). Size, as BuildKit's
`cacheRecord.size` and Docker's `snapshotter.Usage` compute it: the record's
`snapshot.size` if >= 0; for a mutable record, its twin's; for a blob-only
record 0 (+ its blob file, if any); else the layerdb `size` when the snapshot
key is a layer; else `snapshots.db/<key>/size`; else None, and Docker's figure
is then `directory.Size(overlay2/<snapshot_id>/diff)` (native overlay diff).
Every `docker system df` or prune stores the sizes, so None only appears for
records built since the last one. `BuilderSize` (API < 1.42) = sum of sizes;
the docker 28 CLI's `system df` Build Cache SIZE and RECLAIMABLE sum only the
records with Shared false (310242 = "310.2kB" of 1925130 in the 26.1 sample).
A `df` also commits each mutable record that has no twin yet, which bumps its
stored `cache.usageCount`/`cache.lastUsedAt` after answering.

Offline `InUse` is false for every record: references live only in a running
build. `Shared` (not reclaimable by a plain prune) holds when the record's own
layer, `snapshots.db/<record ID>/chainid`, is a prefix chain of some image in
imagedb (tagged or not), and then for all its ancestors; give those chain IDs
as `image_chain_ids` to get it, else it is None. `last_used` is RFC3339Nano in
UTC (the API prints the same instant in the daemon's zone).
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Protocol, TypeVar

from dockerdu.bbolt import BoltError, Bucket, open_db
from dockerdu.ids import CACHE_ID, DIGEST
from dockerdu.model import Problem
from dockerdu.strconv import in_int64, parse_int64

from ..model import ProblemKind
from ..records import record as frozen_record

__all__ = [
    "BuildCacheRecord",
    "BuildCacheRecords",
    "BuildCacheScan",
    "LayerStore",
    "SnapshotStore",
    "join_build_cache",
    "read_build_cache",
]

DBS = ("metadata_v2.db", "snapshots.db", "containerdmeta.db")
_T = TypeVar("_T")
# The record fields BuildKit decodes into an int64; a JSON number outside it fails that decode.
INT_FIELDS = ("snapshot.size", "cache.usageCount", "cache.lastUsedAt", "cache.createdAt")


@frozen_record
class BuildCacheRecord:
    """One build-cache record as `docker system df -v` lists it."""

    id: str
    snapshot_id: str | None
    parent_ids: tuple[str, ...]
    record_type: str
    description: str
    size: int | None
    shared: bool | None
    last_used: str | None
    usage_count: int | None
    chain_id: str | None = None
    """`sha256:` chain ID of the image layer this record was exported as."""


@frozen_record
class BuildCacheScan:
    """Everything read from `buildkit/`."""

    records: tuple[BuildCacheRecord, ...]
    snapshot_dirs: frozenset[str]
    """Every layer dir BuildKit's databases name (records, snapshots, leases)."""
    problems: tuple[Problem, ...]
    complete: bool
    record_dirs: frozenset[str] = frozenset()
    """The layer dirs a cache record (not deleted) holds: the build cache proper."""


class SnapshotStore(Protocol):
    """The containerd store BuildKit keeps its snapshots and blobs in (namespace `moby`)."""

    def usage(self, key: str) -> int | None:
        """containerd's snapshotter `Usage` of `key` (0 if there is no such snapshot; None: unknown)."""
        ...

    def snapshot_dir(self, key: str) -> str | None:
        """The name of the `snapshots/<n>` dir of `key`."""
        ...

    def blob(self, digest: str) -> tuple[int, tuple[str, ...]] | None:
        """A content-store record's size and compression variants, None if there is none."""
        ...


class LayerStore(Protocol):
    """The graphdriver store's layers, as its layerdb names them."""

    def size(self, chain_id: str) -> int | None:
        """The layer's `size` (None: no such layer, or its size is unusable)."""
        ...

    def cache_id(self, chain_id: str) -> str | None:
        """The layer's dir, its `cache-id` (None: no such layer)."""
        ...


class _Bad(Exception):
    """A value in an otherwise readable db does not parse."""


def _rfc3339(ns: int) -> str | None:
    """Unix nanoseconds as Go's RFC3339Nano in UTC (trailing zeros trimmed)."""
    secs, frac = divmod(ns, 1_000_000_000)
    try:
        base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    except (OverflowError, OSError, ValueError):
        return None
    return base + (f".{frac:09d}".rstrip("0") if frac else "") + "Z"


def _decimal(text: str | None) -> int | None:
    return parse_int64(text) if text is not None else None


def _record_fields(bucket: Bucket) -> dict[str, Any]:
    """Decode one `_main/<id>` bucket: key -> JSON "value" (cleared keys omitted)."""
    fields: dict[str, Any] = {}
    for key, raw in bucket.items():
        if isinstance(raw, Bucket) or not raw:
            continue
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise _Bad(f"bad JSON in {key.decode(errors='replace')}") from exc
        if isinstance(value, dict):
            fields[key.decode(errors="replace")] = value.get("value")
    return fields


def _str(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key)
    return value if isinstance(value, str) else ""


def _int(fields: dict[str, Any], key: str) -> int | None:
    value = fields.get(key)
    ok = isinstance(value, int) and not isinstance(value, bool) and in_int64(value)
    return value if ok else None


def _read_snapshots(root: Bucket) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for key, sub in root.items():
        if isinstance(sub, Bucket):
            out[key.decode(errors="replace")] = {
                k.decode(errors="replace"): v.decode(errors="replace")
                for k, v in sub.items()
                if isinstance(v, bytes)
            }
    return out


def _read_leases(root: Bucket) -> set[str]:
    keys: set[str] = set()
    path = (b"v1", b"buildkit", b"leases")
    bucket: Bucket | None = root
    for part in path:
        bucket = bucket.bucket(part) if bucket is not None else None
    if bucket is None:
        return keys
    for lease in bucket.values():
        if isinstance(lease, Bucket):
            snaps = lease.bucket(b"snapshots")
            default = snaps.bucket(b"default") if snaps is not None else None
            if default is not None:
                keys.update(k.decode(errors="replace") for k in default)
    return keys


def _parents(fields: dict[str, Any]) -> tuple[str, ...]:
    if parent := _str(fields, "cache.parent"):
        return (parent,)
    merge = fields.get("cache.mergeParents")
    if isinstance(merge, list) and merge:
        return tuple(p for p in merge if isinstance(p, str))
    return tuple(
        p
        for p in (
            _str(fields, "cache.lowerDiffParent"),
            _str(fields, "cache.upperDiffParent"),
        )
        if p
    )


@frozen_record
class BuildCacheRecords:
    """What `buildkit/` holds, as read: the records and snapshots, not yet joined with a store."""

    meta: dict[str, dict[str, Any]]
    """`metadata_v2.db`: record ID -> its fields (JSON values)."""
    snapshots: dict[str, dict[str, str]]
    """`snapshots.db`: snapshot key -> its fields."""
    leased: frozenset[str]
    """Snapshot keys `containerdmeta.db`'s leases hold."""
    blob_files: dict[str, int]
    """Digest -> size of its regular file under `content/blobs/sha256/`, for the records' blobs."""
    problems: tuple[Problem, ...]
    complete: bool


def read_build_cache(buildkit_dir: Path) -> BuildCacheRecords:
    """Read BuildKit's databases under `buildkit_dir`: records only (the stores join them)."""
    problems: list[Problem] = []

    def guarded(name: str, read: Callable[[Bucket], _T], default: _T) -> _T:
        path = buildkit_dir / name
        if not os.path.lexists(path):
            return default
        for attempt in (1, 2):  # a copy torn by a concurrent commit reads fine the next time
            try:
                return read(open_db(path))
            except OSError as exc:  # noqa: PERF203 (two attempts at most)
                problems.append(_problem(name, exc.strerror or str(exc)))
                return default
            except (BoltError, _Bad, UnicodeDecodeError) as exc:
                if attempt == 2 or not isinstance(exc, BoltError):
                    problems.append(_problem(name, str(exc)))
                    return default
        return default

    def read_main(db: Bucket) -> dict[str, dict[str, Any]]:
        main = db.bucket(b"_main")
        out: dict[str, dict[str, Any]] = {}
        for key, sub in main.items() if main is not None else ():
            if isinstance(sub, Bucket):
                try:
                    out[key.decode()] = _record_fields(sub)
                except _Bad as exc:
                    raise _Bad(f"record {key.decode(errors='replace')}: {exc}") from exc
        return out

    meta: dict[str, dict[str, Any]] = guarded("metadata_v2.db", read_main, {})
    # A value out of range leaves that record's figure unknown, not the dbs unread.
    value_problems: list[Problem] = []
    for key in INT_FIELDS:
        bad = sorted(
            rid
            for rid, fields in meta.items()
            if isinstance(v := fields.get(key), int) and not isinstance(v, bool) and not in_int64(v)
        )
        if bad:
            value_problems.append(
                _problem(
                    "metadata_v2.db",
                    f"{key} of {len(bad)} record(s) (first {bad[0][:40]}) is outside int64: "
                    "BuildKit cannot decode it",
                )
            )
    snaps: dict[str, dict[str, str]] = guarded("snapshots.db", _read_snapshots, {})
    leased: set[str] = guarded("containerdmeta.db", _read_leases, set())
    blob_files: dict[str, int] = {}
    for fields in meta.values():
        blob = _str(fields, "cache.blob")
        if DIGEST.fullmatch(blob) and blob not in blob_files:
            try:
                st = os.lstat(buildkit_dir / "content" / "blobs" / "sha256" / blob[7:])
            except OSError:
                continue
            blob_files[blob] = st.st_size if stat.S_ISREG(st.st_mode) else 0
    return BuildCacheRecords(
        meta, snaps, frozenset(leased), blob_files, tuple(problems + value_problems), not problems
    )


def join_build_cache(
    read: BuildCacheRecords,
    image_chain_ids: Collection[str] | None = None,
    layers: LayerStore | None = None,
    containerd: SnapshotStore | None = None,
) -> BuildCacheScan:
    """Join BuildKit's records with the store they keep their snapshots in: each record's dir
    and size, and the layer dirs BuildKit holds.

    `image_chain_ids`: every prefix chain ID (`sha256:...`) of every image in
    imagedb; when given, `shared` is computed as Docker does, else None.

    `layers`: on a graphdriver store, its layerdb (a `sha256:` snapshot key, or one
    with a `chainid`, is a layer whose dir is its `cache-id`); None: no layer is known.

    `containerd`: on the containerd image store (`buildkit/containerd-overlayfs/`
    holds only `metadata_v2.db`), the store BuildKit's snapshots and blobs are
    in. A record whose size BuildKit has not stored yet is then sized as
    BuildKit's `cacheRecord.size` does: the snapshotter's `Usage` of its
    snapshot (stored size when committed, live `fs.DiskUsage` when active; none
    for a blob-only record) plus the content-store size of its blob and of that
    blob's compression variants, each once.
    """
    meta, snaps = read.meta, read.snapshots

    def chain_of(key: str) -> str | None:
        if key.startswith("sha256:"):
            return key
        return snaps.get(key, {}).get("chainid") or None

    def dir_of(key: str) -> str | None:
        if containerd is not None:
            return containerd.snapshot_dir(key)
        bucket = snaps.get(key)
        if key.startswith("sha256:") or (
            bucket is not None and "committed" not in bucket and "chainid" in bucket
        ):
            chain = chain_of(key)
            return layers.cache_id(chain) if chain and layers is not None else None
        if bucket is None:
            return None
        name = bucket.get("committed") or key
        return name if CACHE_ID.fullmatch(name) else None

    twins = {_str(f, "cache.equalMutable"): rid for rid, f in meta.items() if _str(f, "cache.equalMutable")}

    def size_of(rid: str, fields: dict[str, Any]) -> int | None:
        own = _int(fields, "snapshot.size")
        if own is not None and own >= 0:
            return own
        twin = meta.get(twins.get(rid, ""), {})
        twin_size = _int(twin, "snapshot.size")
        if twin_size is not None and twin_size >= 0:
            return twin_size
        if containerd is not None:
            return _containerd_size(containerd, rid, fields)
        usage: int | None = 0
        if fields.get("cache.blobonly") is not True:
            key = _str(fields, "cache.snapshot") or rid
            chain = chain_of(key)
            cached = _decimal(snaps.get(key, {}).get("size"))
            cached = cached if cached is not None and cached >= 0 else None
            usage = (layers.size(chain) if layers is not None else None) if chain else cached
        blob = _str(fields, "cache.blob")
        if usage is not None and blob in read.blob_files:
            usage += read.blob_files[blob]
        return usage

    listed = {
        rid: f
        for rid, f in meta.items()
        if f.get("cache.deleted") is not True and _str(f, "cache.equalMutable") not in meta
    }
    parents = {rid: _parents(f) for rid, f in listed.items()}
    shared: set[str] = set()
    if image_chain_ids is not None:
        wanted = set(image_chain_ids)
        stack = [rid for rid in listed if chain_of(rid) in wanted]
        while stack:
            rid = stack.pop()
            if rid not in shared:
                shared.add(rid)
                stack.extend(p for p in parents.get(rid, ()) if p in listed)

    records = []
    for rid, f in sorted(listed.items()):
        count = _int(f, "cache.usageCount")
        last = _int(f, "cache.lastUsedAt")
        records.append(
            BuildCacheRecord(
                id=rid,
                snapshot_id=dir_of(_str(f, "cache.snapshot") or rid),
                parent_ids=parents[rid],
                record_type=_str(f, "cache.recordType") or "regular",
                description=_str(f, "cache.description"),
                size=size_of(rid, f),
                shared=(rid in shared) if image_chain_ids is not None else None,
                last_used=_rfc3339(last) if count is not None and last else None,
                usage_count=count or 0,
                chain_id=chain_of(rid),
            )
        )

    keys: set[str] = set(snaps) | read.leased
    for rid, f in meta.items():
        keys.update((rid, _str(f, "cache.snapshot"), _str(f, "cache.equalMutable")))
    dirs = {d for d in map(dir_of, keys) if d}
    dirs.update(b["committed"] for b in snaps.values() if CACHE_ID.fullmatch(b.get("committed", "")))
    held: set[str] = set()
    for rid, f in meta.items():
        if f.get("cache.deleted") is not True:
            held.update((rid, _str(f, "cache.snapshot"), _str(f, "cache.equalMutable")))
    return BuildCacheScan(
        records=tuple(records),
        snapshot_dirs=frozenset(dirs),
        problems=read.problems,
        complete=read.complete,
        record_dirs=frozenset(d for d in map(dir_of, held - {""}) if d),
    )


def _containerd_size(store: SnapshotStore, rid: str, fields: dict[str, Any]) -> int | None:
    usage: int | None = 0
    if fields.get("cache.blobonly") is not True:
        usage = store.usage(_str(fields, "cache.snapshot") or rid)
    blob = _str(fields, "cache.blob")
    if usage is None or not DIGEST.fullmatch(blob):
        return usage
    info = store.blob(blob)
    if info is None:
        return usage
    usage += info[0]
    added = {blob}
    for variant in info[1]:
        if variant not in added and (other := store.blob(variant)) is not None:
            usage += other[0]
            added.add(variant)
    return usage


def _problem(name: str, reason: str) -> Problem:
    return Problem(ProblemKind.metadata_unreadable, f"buildkit/{name}", reason[:200] or "unreadable")
