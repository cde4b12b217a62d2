"""Image references as Docker resolves them against its tag store."""

from __future__ import annotations

import re

from .index import Index

HEX = re.compile(r"[0-9a-f]+")
_HUB = ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/")


def familiar(ref: str) -> str:
    """A reference as repositories.json spells it: Docker Hub's prefixes dropped, `:latest` added."""
    for prefix in _HUB:
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    if "@" in ref:
        return ref
    return ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"


def resolves_to(index: Index, ref: str, image_id: str) -> bool:
    """Whether `ref` (a tag, a digest reference, an ID or ID prefix) names `image_id` today."""
    name = familiar(ref)
    for view in index.images.values():
        if name in view.tags or name in view.digests:
            return view.record.id == image_id
    q = ref.lower().removeprefix("sha256:")
    return bool(q) and HEX.fullmatch(q) is not None and image_id[7:].startswith(q)


def shown_image(index: Index, ref: str, image_id: str | None) -> str:
    """What `docker ps` shows as a container's image: the reference it was created from, or the
    image ID once that reference names another image (a tag moved) or none (it was removed)."""
    if image_id is None or not ref:
        return ref or (image_id or "")
    return ref if resolves_to(index, ref, image_id) else image_id
