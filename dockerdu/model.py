"""Plain records shared by readers, analysis and renderers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """Something under the root that could not be read or does not add up.

    `kind` is one of the JSON contract's problem kinds (e.g. `metadata_unreadable`),
    `path` is relative to the Docker root, `reason` is one line of plain text.
    """

    kind: str
    path: str
    reason: str


@dataclass(frozen=True)
class Orphan:
    """A leftover nothing references, proven so; its bytes could be reclaimed.

    `path` names it (relative to the root); `paths` are every root-relative path
    whose bytes belong to it (e.g. a layerdb dir, its overlay2 dir and `l/` link).
    `cleaned_by`: who removes it without dockerdu (CLEANED_BY), from its kind unless given.
    """

    kind: str
    path: str
    reason: str
    paths: tuple[str, ...]
    cleaned_by: str = ""

    def __post_init__(self) -> None:
        if not self.cleaned_by:
            object.__setattr__(self, "cleaned_by", CLEANED_BY[self.kind])


ORPHAN_KINDS = (
    "layer_dir_unreferenced",
    "layer_unreferenced",
    "container_layer_orphaned",
    "container_dir_orphaned",
    "link_broken",
    "layerdb_tmp",
    "layer_removing",
    "snapshot_unreferenced",
    "snapshot_dir_unreferenced",
    "blob_unreferenced",
    "lease_stale",
    "content_ingest",
    "store_unused",
)
NEVER = "never"
DOCKERD_AT_STOP = "dockerd at clean stop"
CONTAINERD_AT_START = "containerd at start"
BUILDKIT_AT_START = "BuildKit at start"
BUILDER_PRUNE = "docker builder prune"
CLEANERS = (NEVER, DOCKERD_AT_STOP, CONTAINERD_AT_START, BUILDKIT_AT_START, BUILDER_PRUNE)
"""Who removes a leftover without dockerdu (each checked on real 20.10 and 26.1 daemons)."""

CLEANED_BY: dict[str, str] = {
    "layer_dir_unreferenced": NEVER,
    "layer_unreferenced": NEVER,
    "container_layer_orphaned": NEVER,
    "container_dir_orphaned": NEVER,
    "link_broken": NEVER,
    "layerdb_tmp": NEVER,
    # layerStore.Cleanup at shutdown, not at start and not after a kill.
    "layer_removing": DOCKERD_AT_STOP,
    # containerd's GC runs when containerd starts.
    "snapshot_unreferenced": CONTAINERD_AT_START,
    "blob_unreferenced": CONTAINERD_AT_START,
    # A blob file with no record goes only when a GC pass removes some content (checked on 26.1).
    "blob_unreferenced:no_record": NEVER,
    # The overlayfs snapshotter's Cleanup runs only after a GC pass that removes a snapshot.
    "snapshot_dir_unreferenced": NEVER,
    "snapshot_dir_unreferenced:gc": CONTAINERD_AT_START,
    # A container's lease outlives it; an expired one is GC's; BuildKit drops its temporary ones.
    "lease_stale": NEVER,
    "lease_stale:expired": CONTAINERD_AT_START,
    "lease_stale:temporary": BUILDKIT_AT_START,
    # Only an ingest named sha256(ref) of an aborted ref goes, at a content clean-up.
    "content_ingest": NEVER,
    "store_unused": NEVER,
}
"""Orphan kind (or kind:case) -> who cleans it: the one place for this fact."""


def settle_cleaned_by(orphans: list[Orphan]) -> None:
    """Unknown snapshot dirs go when containerd's start-up GC removes some snapshot."""
    gc_removes_snapshot = any(
        o.cleaned_by in (CONTAINERD_AT_START, BUILDKIT_AT_START)
        and (o.kind == "snapshot_unreferenced" or (o.kind == "lease_stale" and o.paths))
        for o in orphans
    )
    if gc_removes_snapshot:
        for i, o in enumerate(orphans):
            if o.kind == "snapshot_dir_unreferenced":
                orphans[i] = Orphan(o.kind, o.path, o.reason, o.paths, CLEANED_BY[f"{o.kind}:gc"])


PROBLEM_KINDS = (
    "layer_dir_missing",
    "image_layer_missing",
    "link_missing",
    "metadata_unreadable",
    "layer_chain_mismatch",
    "path_unreadable",
    "references_incomplete",
    "reference_dangling",
    "data_outside_root",
    "containerd_root_missing",
    "history_mismatch",  # dockerdu image: an image's history and its layers do not pair up
)

CATEGORIES = (
    "images",
    "image_content",
    "containers",
    "logs",
    "volumes",
    "build_cache",
    "orphans",
    "metadata",
    "other",
)
