"""Layer chains: Docker's chain ID formula (layer.CreateChainID / image-spec identity.ChainID)
and the walk from a layer down to its base."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol, TypeVar

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


K = TypeVar("K", bound=str)
K_co = TypeVar("K_co", bound=str, covariant=True)


class Linked(Protocol[K_co]):
    """A record that names its parent: a layerdb layer, a containerd snapshot."""

    @property
    def parent(self) -> K_co | None: ...


def ancestry(records: Mapping[K, Linked[K]], top: K | None) -> Iterator[K]:
    """`top`, its parent, its parent's parent …, as far as `records` holds them (a loop ends it)."""
    seen: set[K] = set()
    while top is not None and top in records and top not in seen:
        seen.add(top)
        yield top
        top = records[top].parent


def ancestors(records: Mapping[K, Linked[K]], tops: Iterable[K | None]) -> set[K]:
    """Every key of `records` that some `top` stands on, the tops included."""
    held: set[K] = set()
    for top in tops:
        for key in ancestry(records, top):
            if key in held:
                break  # the rest of this chain is held already
            held.add(key)
    return held
