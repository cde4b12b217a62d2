"""Docker's chain ID formula (layer.CreateChainID / image-spec identity.ChainID)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .ids import ChainID, DiffID


def chain_ids(diff_ids: Sequence[DiffID]) -> tuple[ChainID, ...]:
    """The chain ID of every layer prefix.

    chain[0] = diff[0]; chain[i] = sha256(chain[i-1] + " " + diff[i]), both full `sha256:<hex>`.
    """
    chains: list[ChainID] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(ChainID(diff_id))
        else:
            digest = hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest()
            chains.append(ChainID("sha256:" + digest))
    return tuple(chains)
