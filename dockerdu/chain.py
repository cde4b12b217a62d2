"""Docker's chain ID formula (layer.CreateChainID / image-spec identity.ChainID)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .ids import ChainID, DiffID


def chain_id(parent: ChainID | None, diff_id: DiffID) -> ChainID:
    """The chain ID of a layer: its diff ID on a base layer, else sha256(parent + " " + diff ID).

    Both operands are full `sha256:<hex>` strings.
    """
    if parent is None:
        return ChainID(diff_id)
    return ChainID("sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest())


def chain_ids(diff_ids: Sequence[DiffID]) -> tuple[ChainID, ...]:
    """The chain ID of every layer prefix, base first."""
    chains: list[ChainID] = []
    for diff_id in diff_ids:
        chains.append(chain_id(chains[-1] if chains else None, diff_id))
    return tuple(chains)
