"""The containerd image store: Docker's data in containerd's namespace `moby`, in a managed
(`containerd/daemon/`) or a system containerd's root."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...layout import Layout, containerd_layout
from ...readers.containerd import CONTENT, CTRD, NAMESPACE, snapshotter_dir
from ...records import record

if TYPE_CHECKING:
    from ...ctrdroot import ContainerdRoot
    from ...index import Index
    from ...locate import Location
    from ...locate import Store as StoreKind


def owned_paths(snapshotter: str) -> tuple[str, ...]:
    """The root-relative paths of a managed containerd store's data: its snapshots and content."""
    return (snapshotter_dir(snapshotter), f"{CTRD}/{CONTENT}")


@record
class ContainerdStore:
    """A Docker root whose images, writable layers and build cache containerd keeps."""

    location: Location
    kind: StoreKind
    where: ContainerdRoot
    """Where containerd's root is, and how that was decided."""

    @property
    def layout(self) -> Layout:
        from .read import base_of, walked_root

        root = self.location.root
        return containerd_layout(
            str(root),
            self.kind.driver,
            NAMESPACE.decode(),
            base_of(root, self.where),
            walked_root(root, self.where),
        )

    def index(self, now: float) -> Index:
        from .read import containerd_index

        return containerd_index(self.location, self.kind, now, self.where, self.layout)

    def layer_dir(self, key: str) -> str:
        return self.layout.layer_dir(key)

    def owned_paths(self) -> tuple[str, ...]:
        return owned_paths(self.kind.driver)
