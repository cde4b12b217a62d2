"""Answer "who owns this?" for an ID or a path under the root, from the index alone."""

from __future__ import annotations

import os
from pathlib import Path

from .index import Index, Owner
from .readers.containerd import CONTENT, CTRD

BLOBS = f"{CTRD}/{CONTENT}/blobs/sha256/"
SYSTEM_BLOBS = f"/{CONTENT}/blobs/sha256/"


def _images_using(index: Index, chain_id: str) -> list[str]:
    return sorted(
        ", ".join(v.tags) or v.record.id[7:19] for v in index.images.values() if chain_id in v.chain
    )


def describe_owner(index: Index, owner: Owner) -> str:
    """One line naming an owner in Docker's terms."""
    cat, key = owner
    if cat == "images":
        chains = [c for c, layer in index.layers.items() if layer.cache_id == key]
        parts = []
        for c in chains:
            images = _images_using(index, c) or ["no image (held by a container)"]
            place = f"snapshot {key}" if index.store == "containerd" else f"cache ID {key}"
            parts.append(f"layer {c} ({place}) of image(s) {'; '.join(images)}")
        return " / ".join(parts) or f"image layer dir {key}"
    if cat == "containers":
        view = index.containers.get(key)  # type: ignore[call-overload]
        name = view.record.name if view is not None else ""
        return f"writable layer of container {name} ({key})"
    if cat == "logs":
        view = index.containers.get(key)  # type: ignore[call-overload]
        name = view.record.name if view is not None else ""
        return f"logs of container {name} ({key})"
    if cat == "volumes":
        users = index.volume_users.get(key, ())
        return f"volume {key}" + (f", mounted by {len(users)} container(s)" if users else ", unused")
    if cat == "image_content":
        return "content-store blob an image reaches (compressed layer, manifest, index or config)"
    if cat == "build_cache":
        recs = [r.id for r in index.buildkit.records if key in (r.snapshot_id, r.id)]
        return f"build cache {key}" + (f" (records {', '.join(recs)})" if recs else "")
    if cat == "orphans":
        for o in index.orphans:
            if o.path == key:
                return f"orphan {o.kind}: {o.path} ({o.reason})"
        return f"orphan {key}"
    if cat == "metadata":
        return "Docker's own metadata"
    return f"other: {key}"


def which(index: Index, root: Path, query: str) -> list[str]:
    """Every owner the query names: an ID (full or prefix, with or without sha256:) or a path."""
    answers: list[str] = []
    rel = _as_relpath(root, query)
    ctrd = index.containerd_root
    if rel is None and ctrd is not None and ctrd.path is not None and not ctrd.managed:
        # A path under a system containerd's root: the index names those by their absolute path.
        inside = _as_relpath(ctrd.path, query) if os.path.isabs(query) else None
        if inside is not None:
            rel = str(ctrd.path) if inside == "." else f"{ctrd.path}/{inside}"
    if rel is not None:
        answers.append(f"{rel}: {describe_owner(index, index.owner_of(rel))}")
        return answers
    q = query.removeprefix("sha256:").lower()
    if len(q) < 4:
        return answers
    for image_id, view in index.images.items():
        if image_id[7:].startswith(q):
            answers.append(f"image {image_id} ({', '.join(view.tags) or '<none>'})")
    for chain_id, layer in index.layers.items():
        for label, value in (
            ("chain ID", chain_id[7:]),
            ("diff ID", layer.diff_id[7:]),
            ("cache ID", layer.cache_id),
        ):
            if value.startswith(q):
                owner = index.layer_owner.get(chain_id, Owner("other", "?"))
                answers.append(f"{label} {value}: {describe_owner(index, owner)}")
    for cid, cview in index.containers.items():
        mount = cview.mount
        ids: list[tuple[str, str]] = [("container", cid)]
        if mount is not None:
            ids += [("mount ID", mount.mount_id)] + ([("init ID", mount.init_id)] if mount.init_id else [])
        for label, value in ids:
            if value.startswith(q):
                answers.append(f"{label} {value}: {describe_owner(index, Owner('containers', cid))}")
    for name, owner in index.dir_owner.items():
        if name.startswith(q) and not any(name in a for a in answers):
            answers.append(f"overlay2/{name}: {describe_owner(index, owner)}")
    for rel_mark, mark in index.marks.items():
        if rel_mark.startswith("overlay2/l/") and rel_mark[11:].lower().startswith(q) and mark.owner:
            answers.append(f"{rel_mark}: {describe_owner(index, mark.owner)}")
        elif (at := _blob_at(rel_mark)) and rel_mark[at:].startswith(q) and mark.owner:
            answers.append(f"blob sha256:{rel_mark[at:]}: {describe_owner(index, mark.owner)}")
    return answers


def _blob_at(rel: str) -> int:
    """Where the digest starts in a content-store blob's path (of either root), else 0."""
    if rel.startswith(BLOBS):
        return len(BLOBS)
    at = rel.find(SYSTEM_BLOBS)
    return at + len(SYSTEM_BLOBS) if rel.startswith("/") and at >= 0 else 0


def _as_relpath(root: Path, query: str) -> str | None:
    if os.path.isabs(query):
        try:
            return str(Path(os.path.normpath(query)).relative_to(root)) or "."
        except ValueError:
            return None
    if "/" in query or os.path.lexists(root / query):
        return os.path.normpath(query)
    return None
