"""Docker's identifiers as distinct types, parsed and validated once at the edge."""

from __future__ import annotations

import re
from typing import NewType

ImageID = NewType("ImageID", str)
"""`sha256:<hex>` of an image config (imagedb/content)."""
DiffID = NewType("DiffID", str)
"""`sha256:<hex>` of an uncompressed layer tar (rootfs.diff_ids)."""
ChainID = NewType("ChainID", str)
"""`sha256:<hex>` naming a layerdb/sha256/<hex> dir."""
CacheID = NewType("CacheID", str)
"""Name of a graphdriver dir (overlay2/<cache-id>): 64 hex, or 25 base-36 for BuildKit."""
MountID = NewType("MountID", str)
"""Name of a container's writable graphdriver dir (64 hex; `-init` for its init layer)."""
ContainerID = NewType("ContainerID", str)
"""64-hex container ID (containers/<id>)."""

HEX64 = re.compile(r"[0-9a-f]{64}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
BUILDKIT_ID = re.compile(r"[0-9a-z]{25}")
CACHE_ID = re.compile(r"[0-9a-f]{64}|[0-9a-z]{25}")
MOUNT_ID = re.compile(r"[0-9a-f]{64}(-init)?")


class IDError(ValueError):
    """A file that should hold an ID holds something else."""


def _digest(text: str) -> str:
    if not DIGEST.fullmatch(text):
        raise IDError(f"not a sha256 digest: {text[:80]!r}")
    return text


def parse_digest(text: str) -> str:
    """Return `text` if it is `sha256:<64 hex>`, else raise IDError."""
    return _digest(text)


def parse_chain_id(text: str) -> ChainID:
    """Parse `sha256:<hex>` naming a layer chain."""
    return ChainID(_digest(text))


def parse_diff_id(text: str) -> DiffID:
    """Parse `sha256:<hex>` naming a layer diff."""
    return DiffID(_digest(text))


def parse_image_id(text: str) -> ImageID:
    """Parse `sha256:<hex>` naming an image config."""
    return ImageID(_digest(text))


def parse_cache_id(text: str) -> CacheID:
    """Parse a graphdriver dir name from a `cache-id` file."""
    if not CACHE_ID.fullmatch(text):
        raise IDError(f"not a cache ID: {text[:80]!r}")
    return CacheID(text)


def parse_mount_id(text: str) -> MountID:
    """Parse a graphdriver dir name from a `mount-id` or `init-id` file."""
    if not MOUNT_ID.fullmatch(text):
        raise IDError(f"not a mount ID: {text[:80]!r}")
    return MountID(text)


def parse_container_id(text: str) -> ContainerID:
    """Parse a 64-hex container ID."""
    if not HEX64.fullmatch(text):
        raise IDError(f"not a container ID: {text[:80]!r}")
    return ContainerID(text)


def is_buildkit_id(name: str) -> bool:
    """True for a 25-character base-36 BuildKit snapshot ID."""
    return BUILDKIT_ID.fullmatch(name) is not None and not HEX64.fullmatch(name)
