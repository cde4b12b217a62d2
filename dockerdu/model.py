"""Plain records shared by readers, analysis and renderers, and the vocabulary they speak.

The vocabulary (categories, orphan and problem kinds, who cleans an orphan, output formats)
is a set of str-valued enums: a member is its value wherever it is printed (JSON, CSV,
Prometheus labels, tables, the history file), and mypy rejects a kind no enum names. Each
member's `meaning` is the one line the README's tables show (tests/test_vocabulary.py).
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, cast

if sys.version_info >= (3, 11):
    from typing import assert_never
else:

    def assert_never(value: NoReturn) -> NoReturn:
        """typing.assert_never (Python >= 3.11): mypy proves a dispatch over an enum exhaustive."""
        raise AssertionError(f"unhandled value: {value!r}")


class _Value(str, enum.Enum):
    """A member that is its value: `str()`, f-strings, `%s`, `json.dumps` and `csv` give the value."""

    __str__ = str.__str__

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)

    @property
    def meaning(self) -> str:
        """One line saying what it is: the README's table cell."""
        return MEANINGS[type(self)][self]


class Category(_Value):
    """A report category (`totals`): each byte under the root is in exactly one."""

    images = "images"
    image_content = "image_content"
    containers = "containers"
    logs = "logs"
    volumes = "volumes"
    build_cache = "build_cache"
    orphans = "orphans"
    metadata = "metadata"
    other = "other"


class OrphanKind(_Value):
    """What a proven leftover is (`orphans[].kind`)."""

    layer_dir_unreferenced = "layer_dir_unreferenced"
    layer_unreferenced = "layer_unreferenced"
    container_layer_orphaned = "container_layer_orphaned"
    container_dir_orphaned = "container_dir_orphaned"
    link_broken = "link_broken"
    layerdb_tmp = "layerdb_tmp"
    layer_removing = "layer_removing"
    snapshot_unreferenced = "snapshot_unreferenced"
    snapshot_dir_unreferenced = "snapshot_dir_unreferenced"
    blob_unreferenced = "blob_unreferenced"
    lease_stale = "lease_stale"
    content_ingest = "content_ingest"
    store_unused = "store_unused"


class CleanCase(_Value):
    """An orphan kind whose cleaner depends on more than its kind: `kind:case`."""

    blob_no_record = "blob_unreferenced:no_record"
    snapshot_dir_gc = "snapshot_dir_unreferenced:gc"
    lease_expired = "lease_stale:expired"
    lease_temporary = "lease_stale:temporary"

    @property
    def kind(self) -> OrphanKind:
        """The orphan kind this is a case of."""
        return OrphanKind(self.value.split(":", 1)[0])


class ProblemKind(_Value):
    """What does not add up or cannot be read (`problems[].kind`)."""

    layer_dir_missing = "layer_dir_missing"
    image_layer_missing = "image_layer_missing"
    link_missing = "link_missing"
    metadata_unreadable = "metadata_unreadable"
    layer_chain_mismatch = "layer_chain_mismatch"
    path_unreadable = "path_unreadable"
    references_incomplete = "references_incomplete"
    reference_dangling = "reference_dangling"
    data_outside_root = "data_outside_root"
    containerd_root_missing = "containerd_root_missing"
    history_mismatch = "history_mismatch"


class Cleaner(_Value):
    """Who removes a leftover without dockerdu (`orphans[].cleaned_by`; each checked on real 20.10 and
    26.1 daemons)."""

    never = "never"
    dockerd_at_stop = "dockerd at clean stop"
    containerd_at_start = "containerd at start"
    buildkit_at_start = "BuildKit at start"
    builder_prune = "docker builder prune"


class OutputFormat(_Value):
    """What `--format` accepts."""

    table = "table"
    json = "json"
    prometheus = "prometheus"
    csv = "csv"
    html = "html"


class OrphansFormat(_Value):
    """What `dockerdu orphans --format` accepts: the report's formats but the page (whose
    treemap and tables hold the orphans beside everything else)."""

    table = "table"
    json = "json"
    prometheus = "prometheus"
    csv = "csv"


class ImageFormat(_Value):
    """What `dockerdu image --format` accepts."""

    table = "table"
    json = "json"


class PlanFormat(_Value):
    """What `prune --format` accepts."""

    table = "table"
    json = "json"


@dataclass(frozen=True)
class Problem:
    """Something under the root that could not be read or does not add up.

    `path` is relative to the Docker root, `reason` is one line of plain text.
    """

    kind: ProblemKind
    path: str
    reason: str


@dataclass(frozen=True)
class Orphan:
    """A leftover nothing references, proven so; its bytes could be reclaimed.

    `path` names it (relative to the root); `paths` are every root-relative path
    whose bytes belong to it (e.g. a layerdb dir, its overlay2 dir and `l/` link).
    `cleaned_by`: who removes it without dockerdu (CLEANED_BY), from its kind unless given.
    """

    kind: OrphanKind
    path: str
    reason: str
    paths: tuple[str, ...]
    cleaned_by: Cleaner = cast(Cleaner, None)  # not given: its kind's, set by __post_init__

    def __post_init__(self) -> None:
        if not self.cleaned_by:
            object.__setattr__(self, "cleaned_by", CLEANED_BY[self.kind])


CLEANED_BY: dict[OrphanKind | CleanCase, Cleaner] = {
    OrphanKind.layer_dir_unreferenced: Cleaner.never,
    OrphanKind.layer_unreferenced: Cleaner.never,
    OrphanKind.container_layer_orphaned: Cleaner.never,
    OrphanKind.container_dir_orphaned: Cleaner.never,
    OrphanKind.link_broken: Cleaner.never,
    OrphanKind.layerdb_tmp: Cleaner.never,
    # layerStore.Cleanup at shutdown, not at start and not after a kill.
    OrphanKind.layer_removing: Cleaner.dockerd_at_stop,
    # containerd's GC runs when containerd starts.
    OrphanKind.snapshot_unreferenced: Cleaner.containerd_at_start,
    OrphanKind.blob_unreferenced: Cleaner.containerd_at_start,
    # A blob file with no record goes only when a GC pass removes some content (checked on 26.1).
    CleanCase.blob_no_record: Cleaner.never,
    # The overlayfs snapshotter's Cleanup runs only after a GC pass that removes a snapshot.
    OrphanKind.snapshot_dir_unreferenced: Cleaner.never,
    CleanCase.snapshot_dir_gc: Cleaner.containerd_at_start,
    # A container's lease outlives it; an expired one is GC's; BuildKit drops its temporary ones.
    OrphanKind.lease_stale: Cleaner.never,
    CleanCase.lease_expired: Cleaner.containerd_at_start,
    CleanCase.lease_temporary: Cleaner.buildkit_at_start,
    # Only an ingest named sha256(ref) of an aborted ref goes, at a content clean-up.
    OrphanKind.content_ingest: Cleaner.never,
    OrphanKind.store_unused: Cleaner.never,
}
"""Orphan kind (or kind:case) -> who cleans it: the one place for this fact."""


def settle_cleaned_by(orphans: list[Orphan]) -> None:
    """Unknown snapshot dirs go when containerd's start-up GC removes some snapshot."""
    gc_removes_snapshot = any(
        o.cleaned_by in (Cleaner.containerd_at_start, Cleaner.buildkit_at_start)
        and (o.kind == OrphanKind.snapshot_unreferenced or (o.kind == OrphanKind.lease_stale and o.paths))
        for o in orphans
    )
    if gc_removes_snapshot:
        for i, o in enumerate(orphans):
            if o.kind == OrphanKind.snapshot_dir_unreferenced:
                orphans[i] = Orphan(o.kind, o.path, o.reason, o.paths, CLEANED_BY[CleanCase.snapshot_dir_gc])


# What each member means: the README's tables show these lines (tests/test_vocabulary.py).
_CATEGORY: dict[Category, str] = {
    Category.images: (
        "overlay2 dirs (and links) of layers reached from an image or a container; containerd store: the "
        "snapshots on an image's chain"
    ),
    Category.image_content: (
        "containerd store only: content-store blobs an image reaches (compressed layers kept beside the "
        "unpacked snapshots, manifests, configs)"
    ),
    Category.containers: "writable and init dirs of containers Docker loads",
    Category.logs: (
        "json-file logs with their rotated and compressed siblings, the `local` driver's `local-logs/`, the "
        "dual-logging cache"
    ),
    Category.volumes: "`volumes/<name>/`",
    Category.build_cache: (
        "overlay2 dirs a BuildKit cache record holds (its layer and the layers under it), "
        "`buildkit/content/`; containerd store: snapshots and blobs held by BuildKit's leases, "
        "build-history blobs"
    ),
    Category.orphans: "every orphan below",
    Category.metadata: (
        "Docker's own databases and small files: `image/`, layerdb, `containers/<id>/` configs, `network/`, "
        "`buildkit/*.db`, the dirs themselves …"
    ),
    Category.other: (
        "anything else, named in `other[]`: unknown top-level entries, another storage driver's "
        "`image/<driver>/`, dirs in flight while a daemon runs, dirs whose references could not be read, "
        "layers BuildKit's `snapshots.db` still names with no cache record (left by a failed `docker "
        "builder prune`: Docker counts them nowhere and `builder prune` frees nothing), layers that only "
        "several orphaned container layers hold"
    ),
}
_ORPHAN: dict[OrphanKind, str] = {
    OrphanKind.layer_dir_unreferenced: (
        "an `overlay2/` dir that no layer, container mount or build-cache record names"
    ),
    OrphanKind.layer_unreferenced: "a layerdb layer that no image and no container reaches, with its dir",
    OrphanKind.container_layer_orphaned: (
        "a layerdb mount whose container is gone, with its mount and init dirs and the layers only it holds "
        "(Docker keeps a mount's parent layers for it forever, after their image is gone)"
    ),
    OrphanKind.container_dir_orphaned: (
        "a `containers/<id>` with no layer (its layerdb mount is gone), one an interrupted `docker rm` "
        "left, or one with no `config.v2.json` at all (Docker never loads it, nor removes it; its layerdb "
        "mount and writable layer are part of it; which volumes it used is unknown, so while it is there no "
        "volume counts as reclaimable and `reclaimable.volumes` is in `incomplete`). One that is not a dir "
        "(a symlink, file or FIFO), or whose config cannot be decoded (corrupt, or a field of the wrong "
        "type, e.g. `State` not an object), is a `metadata_unreadable` problem instead, its bytes "
        "unattributed and nothing it may own reclaimable (the layers under its mount, the volumes its "
        "config names, or any volume when it names none): Docker no longer counts that container, so "
        "`docker system prune --volumes` would delete its anonymous volumes"
    ),
    OrphanKind.link_broken: "an `l/` short link to a missing dir",
    OrphanKind.layerdb_tmp: (
        "a leftover under `layerdb/tmp` (an interrupted layer write), with the dir it names"
    ),
    OrphanKind.layer_removing: "a layerdb `*-removing` dir left by an interrupted delete, with its dir",
    OrphanKind.snapshot_unreferenced: (
        "containerd store: a snapshot no image, container, lease or other snapshot reaches (garbage "
        "containerd's GC would remove). A snapshot labelled `containerd.io/gc.root` (made by `ctr` or "
        "another client in Docker's namespace) is kept by containerd: it is `other`, never an orphan"
    ),
    OrphanKind.snapshot_dir_unreferenced: (
        "containerd store: a `snapshots/<n>` dir with no record in the snapshotter's `metadata.db`"
    ),
    OrphanKind.blob_unreferenced: (
        "containerd store: a blob no image, lease or other namespace reaches, or with no record in `meta.db`"
    ),
    OrphanKind.lease_stale: (
        "containerd store: a lease nothing will use again — named after a container that is gone; or, with "
        "the daemon stopped, past its `containerd.io/gc.expire` (containerd's GC deletes it) or one of "
        "BuildKit's `buildkit/lease.temporary` leases, which BuildKit deletes when the daemon starts (every "
        "build leaves a few, holding `-view` snapshots). `paths` are the snapshots and blobs only it holds"
    ),
    OrphanKind.content_ingest: "containerd store: a partial content write under `ingest/` (daemon stopped)",
    OrphanKind.store_unused: "the data of the image store the daemon does not use on a root that holds both",
}
_PROBLEM: dict[ProblemKind, str] = {
    ProblemKind.layer_dir_missing: (
        "a layer or writable layer whose dir is gone, naming the images and containers it breaks"
    ),
    ProblemKind.image_layer_missing: "an image whose layer chain is incomplete (Docker no longer loads it)",
    ProblemKind.link_missing: (
        "a layer's `l/` short link is gone or points elsewhere, or its `link` file is (its children cannot "
        "mount)"
    ),
    ProblemKind.metadata_unreadable: (
        "a file that could not be read or parsed (missing, truncated, not JSON, the wrong type, larger than "
        "the bound, a FIFO, a dir or a symlink where a file should be), or an entry Docker would ignore (a "
        "name that is not an ID, a tag that is not a reference); `path` names the file, and the reason says "
        "what Docker then does: a number Go's `strconv.ParseInt(…, 10, 64)` rejects (out of int64, a sign "
        "or digit Docker does not read, a trailing newline) in a layerdb `size` means Docker does not load "
        "that layer; a `repositories.json` Docker cannot decode, or a `volumes/metadata.db` bbolt cannot "
        "open, means dockerd will not start; an `engine-id` that cannot be read (a FIFO, a dir) means "
        "dockerd >= 23.0 will not start; a missing `repositories.json` on a root with images means Docker "
        "recreates it empty and every image becomes dangling (`docker image prune` deletes them)"
    ),
    ProblemKind.layer_chain_mismatch: "a layerdb `diff` that does not match the image that reaches it",
    ProblemKind.path_unreadable: "a path the walk could not read (its owner's figures are incomplete)",
    ProblemKind.references_incomplete: (
        "a reference source could not be read in full, so no orphan of that kind is claimed"
    ),
    ProblemKind.reference_dangling: (
        "a reference that reads fine but names nothing, and what that breaks: a layer `lower` naming an "
        "`l/` link that does not exist (overlay2 cannot mount the layer; no container on it can start), a "
        "tag or digest in `repositories.json` naming an image not in imagedb, a layer's or container "
        "mount's `parent` naming a layer not in layerdb (Docker does not load it). Figures stay exact"
    ),
    ProblemKind.data_outside_root: (
        "a layer's `diff` or a volume's `_data` that is a symlink (to outside the root, or elsewhere in "
        "it): never followed, and Docker would mount what it points to into containers. That layer's `disk` "
        "(and its image's), that container's `rw_size` or that volume's `size` is `null`, and its owner is "
        "in `incomplete`"
    ),
    ProblemKind.containerd_root_missing: (
        "the containerd store is in use but its root was not found (or holds no metadata): no image, "
        "writable-layer or build-cache figure, no orphan claimed; pass `--containerd-root`"
    ),
    ProblemKind.history_mismatch: (
        "`dockerdu image` only: an image whose config `history` does not pair up with its layers, so no "
        "instruction (or only some) can be matched to a layer"
    ),
}
_CLEANER: dict[Cleaner, str] = {
    Cleaner.never: (
        "`layer_dir_unreferenced`, `layer_unreferenced`, `container_layer_orphaned`, "
        "`container_dir_orphaned`, `link_broken`, `layerdb_tmp`, `content_ingest`, `store_unused`; "
        "`lease_stale` of a container that is gone; a `blob_unreferenced` file with no record in `meta.db` "
        "(containerd's GC walks the blob files only in a pass that removes some content: a start leaves "
        "it); `snapshot_dir_unreferenced` unless the next row applies"
    ),
    Cleaner.dockerd_at_stop: (
        "`layer_removing` (layerStore's clean-up at shutdown: not at start, not after a kill)"
    ),
    Cleaner.containerd_at_start: (
        "`snapshot_unreferenced`, a `blob_unreferenced` with a record, an expired `lease_stale` "
        "(containerd's GC runs when it starts); `snapshot_dir_unreferenced` when that GC pass removes some "
        "snapshot (the overlayfs clean-up runs only then)"
    ),
    Cleaner.buildkit_at_start: (
        "a `lease_stale` that is BuildKit's `buildkit/lease.temporary` lease (with its `-view` snapshots)"
    ),
    Cleaner.builder_prune: (
        "no orphan kind: it is what removes the `build_cache` category, and the value is reserved for "
        "leftovers only it removes"
    ),
}
_CLEAN_CASE: dict[CleanCase, str] = {
    CleanCase.blob_no_record: "a `blob_unreferenced` file with no record in `meta.db`",
    CleanCase.snapshot_dir_gc: (
        "a `snapshot_dir_unreferenced` when containerd's start-up GC removes some snapshot"
    ),
    CleanCase.lease_expired: "a `lease_stale` past its `containerd.io/gc.expire`",
    CleanCase.lease_temporary: "a `lease_stale` that is BuildKit's `buildkit/lease.temporary` lease",
}
_OUTPUT_FORMAT: dict[OutputFormat, str] = {
    OutputFormat.table: "aligned text for a terminal, sizes in Docker's units",
    OutputFormat.json: "the Report as one JSON document (schema `dockerdu.report/1`)",
    OutputFormat.prometheus: "gauges in Prometheus's text format, for node_exporter's textfile collector",
    OutputFormat.csv: "one row per object",
    OutputFormat.html: "one self-contained page: a treemap of the root and the report's tables",
}
MEANINGS: dict[type[_Value], Mapping[Any, str]] = {
    Category: _CATEGORY,
    OrphanKind: _ORPHAN,
    CleanCase: _CLEAN_CASE,
    ProblemKind: _PROBLEM,
    Cleaner: _CLEANER,
    OutputFormat: _OUTPUT_FORMAT,
    # A command's --format choices are OutputFormat's, and mean the same.
    OrphansFormat: _OUTPUT_FORMAT,
    ImageFormat: _OUTPUT_FORMAT,
    PlanFormat: _OUTPUT_FORMAT,
}
