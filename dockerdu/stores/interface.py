"""The one face every image store shows the rest of dockerdu.

A store differs from another only in how it reads and joins its records; what it gives
is the same `Index` and `Layout`. Measure, account, render, `which`, the cache and prune
read those, never the store's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..index import Index
    from ..layout import Layout


class Store(Protocol):
    """An image store of a Docker root: the graphdriver store, the containerd store."""

    @property
    def layout(self) -> Layout:
        """The roots the store keeps its data in, its driver or snapshotter, its namespace."""
        ...

    def index(self, now: float) -> Index:
        """Read every record the store keeps (and, while a daemon runs, confirm what looks left over)
        and join them: who owns each path, which objects exist, what is orphaned or damaged."""
        ...

    def layer_dir(self, key: str) -> str:
        """Where the layer `key` (a cache ID, a snapshot's dir name) lives, as the index's marks name it."""
        ...

    def owned_paths(self) -> tuple[str, ...]:
        """The root-relative paths that hold this store's data and nothing else's (what becomes
        `store_unused` when the daemon uses another store)."""
        ...
