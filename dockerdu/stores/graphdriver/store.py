"""The graphdriver store (overlay2, fuse-overlayfs, vfs, overlay, aufs): `image/<driver>/` and `<driver>/`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...layout import Layout, graphdriver_layout
from .drivers import driver as driver_row

if TYPE_CHECKING:
    from ...index import Index
    from ...locate import Location
    from ...locate import Store as StoreKind


def owned_paths(driver: str) -> tuple[str, ...]:
    """The root-relative paths of a graphdriver's data: its image metadata and its own dir."""
    return (f"image/{driver}", driver)


@dataclass(frozen=True)
class GraphdriverStore:
    """A Docker root whose images and layers a graphdriver keeps."""

    location: Location
    kind: StoreKind

    @property
    def layout(self) -> Layout:
        row = driver_row(self.kind.driver)
        return graphdriver_layout(str(self.location.root), row.name, row.layer_root, row.content)

    def index(self, now: float) -> Index:
        from .read import index_graphdriver

        return index_graphdriver(self.location, self.kind, now)

    def layer_dir(self, key: str) -> str:
        return self.layout.layer_dir(key)

    def owned_paths(self) -> tuple[str, ...]:
        return owned_paths(self.kind.driver)
