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
    """

    kind: str
    path: str
    reason: str
    paths: tuple[str, ...]


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
